// Training's bf16 products by cuBLASLt with an algorithm of the caller's choice (Matmul.h). ATen's
// addmm and mm take the heuristic's first offer; for a training step's shapes (~105k rows, widths
// 384-2048, K 384-2048 or the rows) that offer is not always the fastest of those cuBLASLt has.
//
// Column-major, as cuBLASLt sees the row-major tensors (a row-major X [r, c] is a column-major
// [c, r] with leading dimension c):
// - Forward:    D [n, rows] = op_T(W: [k, n]) times x: [k, rows]        (TN), bias along D's rows;
// - InputGrad:  D [k, rows] = W: [k, n] times dy: [n, rows]             (NN), beta 1 to accumulate;
// - WeightGrad: D [k, n]    = x: [k, rows] times op_T(dy: [n, rows])    (NT).
#include "inference/Matmul.h"

#if defined(ATLASCOPE_WITH_CUBLASLT)
#include "inference/CublasLt.h"

#include <cstring>
#include <cuda_runtime.h>
#include <map>
#include <mutex>
#include <tuple>
#endif

namespace atlascope::inference::cuda {

#if defined(ATLASCOPE_WITH_CUBLASLT)
namespace {

constexpr int kMaxOffers = 16;

// A shape's descriptors and the heuristic's offers, found once per shape (and its device's handle).
struct Plan {
  cublasLtHandle_t handle = nullptr;
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  std::vector<cublasLtMatmulAlgo_t> offers;
  bool made = false;
};

using PlanKey = std::tuple<int, int, std::int64_t, int, int, bool, bool, std::int64_t>;

std::mutex& planMutex() {
  static std::mutex m;
  return m;
}

std::map<PlanKey, Plan>& plans() {
  static std::map<PlanKey, Plan> p;
  return p;
}

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

bool takes(const MatmulCall& c) {
  return c.rows > 0 && c.n > 0 && c.k > 0 && c.n % 8 == 0 && c.k % 8 == 0 && c.a && c.b && c.out && aligned16(c.a) &&
         aligned16(c.b) && aligned16(c.out) && (!c.bias || aligned16(c.bias)) &&
         (!c.bias || c.op == MatmulOp::Forward) && (!c.accumulate || c.op == MatmulOp::InputGrad);
}

// The descriptors and offers for the call's shape (`bias`: the call's, set before the heuristic,
// which may infer from it the alignment it can assume).
void makePlan(Plan& p, cublasLtHandle_t handle, const MatmulCall& c, std::int64_t workspaceBytes) {
  p.made = true;
  p.handle = handle;
  const CublasLt& lt = cublasLt();
  const auto rows = static_cast<std::uint64_t>(c.rows), n = static_cast<std::uint64_t>(c.n),
             k = static_cast<std::uint64_t>(c.k);
  cublasOperation_t transA = CUBLAS_OP_N, transB = CUBLAS_OP_N;
  std::uint64_t aRows = k, aCols = n, bRows = n, bCols = rows, dRows = k, dCols = rows; // InputGrad
  if (c.op == MatmulOp::Forward) {
    transA = CUBLAS_OP_T;
    aRows = k, aCols = n, bRows = k, bCols = rows, dRows = n, dCols = rows;
  } else if (c.op == MatmulOp::WeightGrad) {
    transB = CUBLAS_OP_T;
    aRows = k, aCols = rows, bRows = n, bCols = rows, dRows = k, dCols = n;
  }
  const cublasLtEpilogue_t epilogue = c.bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
  const cudaDataType_t biasType = CUDA_R_16BF;
  if (lt.descCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F) != CUBLAS_STATUS_SUCCESS ||
      lt.descSet(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &transA, sizeof(transA)) != CUBLAS_STATUS_SUCCESS ||
      lt.descSet(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &transB, sizeof(transB)) != CUBLAS_STATUS_SUCCESS ||
      lt.descSet(p.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)) != CUBLAS_STATUS_SUCCESS)
    return;
  if (c.bias &&
      (lt.descSet(p.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &biasType, sizeof(biasType)) != CUBLAS_STATUS_SUCCESS ||
       lt.descSet(p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &c.bias, sizeof(c.bias)) != CUBLAS_STATUS_SUCCESS))
    return;
  if (lt.layoutCreate(&p.a, CUDA_R_16BF, aRows, aCols, static_cast<std::int64_t>(aRows)) != CUBLAS_STATUS_SUCCESS ||
      lt.layoutCreate(&p.b, CUDA_R_16BF, bRows, bCols, static_cast<std::int64_t>(bRows)) != CUBLAS_STATUS_SUCCESS ||
      lt.layoutCreate(&p.d, CUDA_R_16BF, dRows, dCols, static_cast<std::int64_t>(dRows)) != CUBLAS_STATUS_SUCCESS)
    return;
  // (16-byte operands, as takes() accepts.)
  p.offers = cublasLtOffers(handle, p.op, p.a, p.b, p.d, workspaceBytes, kMaxOffers);
}

// The call's plan (made on first use), with the lock held by the caller.
Plan* planFor(const MatmulCall& c, std::int64_t workspaceBytes) {
  int device = 0;
  if (!cublasLt().ok || cudaGetDevice(&device) != cudaSuccess) return nullptr;
  const cublasLtHandle_t handle = cublasLtHandle(device);
  if (!handle) return nullptr;
  Plan& p = plans()[PlanKey{device, static_cast<int>(c.op), c.rows, c.n, c.k, c.bias != nullptr, c.accumulate,
                            workspaceBytes}];
  if (!p.made) makePlan(p, handle, c, workspaceBytes);
  return p.offers.empty() ? nullptr : &p;
}

bool launch(const Plan& p, const MatmulCall& c, int algorithm, void* workspace, std::int64_t workspaceBytes,
            void* stream) {
  const CublasLt& lt = cublasLt();
  if (c.bias && lt.descSet(p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &c.bias, sizeof(c.bias)) != CUBLAS_STATUS_SUCCESS)
    return false;
  const float one = 1.f, beta = c.accumulate ? 1.f : 0.f;
  // cuBLASLt's A is the call's b (W, or x for WeightGrad), its B the call's a (x or dy).
  return lt.matmul(p.handle, p.op, &one, c.b, p.a, c.a, p.b, &beta, c.out, p.d, c.out, p.d,
                   &p.offers[static_cast<std::size_t>(algorithm)], workspace, static_cast<std::size_t>(workspaceBytes),
                   static_cast<cudaStream_t>(stream)) == CUBLAS_STATUS_SUCCESS;
}

// Two timing events, destroyed with the holder; `ok` false where either could not be made.
struct EventPair {
  cudaEvent_t start = nullptr, stop = nullptr;
  bool ok = false;
  EventPair() { ok = cudaEventCreate(&start) == cudaSuccess && cudaEventCreate(&stop) == cudaSuccess; }
  ~EventPair() {
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
  }
  EventPair(const EventPair&) = delete;
  EventPair& operator=(const EventPair&) = delete;
};

// The tuned choices (matmulTunedBf16): offer index per shape key (workspace 0).
std::map<PlanKey, int>& choices() {
  static std::map<PlanKey, int> c;
  return c;
}
std::int64_t gTimedShapes = 0, gBorrowedChoices = 0;

// The fastest bare offer of `p` for call `c`, timed on `stream` (lock held): 1 call to load the
// kernel, then 3 between events. -1 where every offer failed.
int timeOffers(const Plan& p, const MatmulCall& c, cudaStream_t stream) {
  const EventPair events;
  if (!events.ok) return -1;
  int best = -1;
  float bestMs = 0.f;
  for (int i = 0; i < static_cast<int>(p.offers.size()); ++i) {
    bool ok = launch(p, c, i, nullptr, 0, stream) && cudaEventRecord(events.start, stream) == cudaSuccess;
    for (int r = 0; r < 3 && ok; ++r) ok = launch(p, c, i, nullptr, 0, stream);
    float ms = 0.f;
    ok = ok && cudaEventRecord(events.stop, stream) == cudaSuccess &&
         cudaEventSynchronize(events.stop) == cudaSuccess &&
         cudaEventElapsedTime(&ms, events.start, events.stop) == cudaSuccess;
    if (!ok) {
      cudaGetLastError();
      continue;
    }
    if (best < 0 || ms < bestMs) best = i, bestMs = ms;
  }
  return best;
}

// For a shape not timed: the offer of `p` that is the algorithm chosen for the nearest rows of the
// same device, op, n, k and bias (the heuristic's first where this shape is not offered it); -1
// where no such shape was timed (or its offers all failed).
int borrowChoice(const Plan& p, const PlanKey& key) {
  const PlanKey* nearest = nullptr;
  std::int64_t distance = 0;
  for (const auto& [k, index] : choices()) {
    if (std::get<0>(k) != std::get<0>(key) || std::get<1>(k) != std::get<1>(key) ||
        std::get<3>(k) != std::get<3>(key) || std::get<4>(k) != std::get<4>(key) ||
        std::get<5>(k) != std::get<5>(key) || std::get<7>(k) != 0 || index < 0)
      continue;
    const std::int64_t d =
        std::get<2>(k) > std::get<2>(key) ? std::get<2>(k) - std::get<2>(key) : std::get<2>(key) - std::get<2>(k);
    if (!nearest || d < distance) nearest = &k, distance = d;
  }
  if (!nearest) return -1;
  const int index = choices()[*nearest];
  const auto found = plans().find(*nearest);
  if (found != plans().end() && index < static_cast<int>(found->second.offers.size()))
    for (std::size_t i = 0; i < p.offers.size(); ++i)
      if (std::memcmp(&p.offers[i], &found->second.offers[static_cast<std::size_t>(index)], sizeof(p.offers[i])) == 0)
        return static_cast<int>(i);
  return 0; // not offered for these rows: the heuristic's first rather than another untimed one
}

} // namespace
#endif

bool matmulAvailable() {
#if defined(ATLASCOPE_WITH_CUBLASLT)
  return cublasLt().ok;
#else
  return false;
#endif
}

std::int64_t matmulWorkspace() { return 32LL << 20; }

int matmulAlgorithmCount([[maybe_unused]] const MatmulCall& call, [[maybe_unused]] std::int64_t workspaceBytes) {
#if defined(ATLASCOPE_WITH_CUBLASLT)
  if (!takes(call) || workspaceBytes < 0) return 0;
  const std::lock_guard<std::mutex> lock(planMutex());
  const Plan* p = planFor(call, workspaceBytes);
  return p ? static_cast<int>(p->offers.size()) : 0;
#else
  return 0;
#endif
}

bool matmulBf16([[maybe_unused]] const MatmulCall& call, [[maybe_unused]] int algorithm,
                [[maybe_unused]] void* workspace, [[maybe_unused]] std::int64_t workspaceBytes,
                [[maybe_unused]] void* stream) {
#if defined(ATLASCOPE_WITH_CUBLASLT)
  if (!takes(call) || workspaceBytes < 0 || (workspaceBytes > 0 && !aligned16(workspace)) || algorithm < 0)
    return false;
  // Held through the call: the shared descriptor takes this call's bias pointer.
  const std::lock_guard<std::mutex> lock(planMutex());
  const Plan* p = planFor(call, workspaceBytes);
  if (!p || algorithm >= static_cast<int>(p->offers.size())) return false;
  return launch(*p, call, algorithm, workspace, workspaceBytes, stream);
#else
  return false;
#endif
}

bool matmulTunedBf16([[maybe_unused]] const MatmulCall& call, [[maybe_unused]] void* stream) {
#if defined(ATLASCOPE_WITH_CUBLASLT)
  if (!takes(call) || call.accumulate) return false;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return false;
  auto s = static_cast<cudaStream_t>(stream);
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(s, &capture) != cudaSuccess) {
    cudaGetLastError(); // ATen's fallback must not find it pending
    return false;
  }
  const std::lock_guard<std::mutex> lock(planMutex());
  const Plan* p = planFor(call, 0);
  if (!p) return false;
  const PlanKey key{device, static_cast<int>(call.op), call.rows, call.n, call.k, call.bias != nullptr, false, 0};
  auto chosen = choices().find(key);
  if (chosen == choices().end()) {
    // A neighbour's choice where one was timed (a step's rows move by a few thousand between
    // batches: each new count would otherwise load and time every offer again).
    int index = borrowChoice(*p, key);
    if (index >= 0) {
      ++gBorrowedChoices;
    } else if (capture != cudaStreamCaptureStatusNone) {
      // Nothing to borrow and no timing inside a capture: the heuristic's first, not recorded (the
      // shape's first call outside a capture times it).
      return launch(*p, call, 0, nullptr, 0, stream);
    } else {
      // Relaxed for the timing's event waits: another stream of this thread may be capturing.
      cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
      cudaThreadExchangeStreamCaptureMode(&mode);
      index = timeOffers(*p, call, s);
      cudaThreadExchangeStreamCaptureMode(&mode);
      if (index >= 0) ++gTimedShapes; // else: recorded as declined, not timed again
    }
    chosen = choices().emplace(key, index).first;
  }
  return chosen->second >= 0 && launch(*p, call, chosen->second, nullptr, 0, stream);
#else
  return false;
#endif
}

MatmulTunedCounts matmulTunedCounts() {
  MatmulTunedCounts c;
#if defined(ATLASCOPE_WITH_CUBLASLT)
  const std::lock_guard<std::mutex> lock(planMutex());
  c.timed = gTimedShapes, c.borrowed = gBorrowedChoices;
#endif
  return c;
}

std::vector<MatmulOfferTime> matmulTimeAlgorithms([[maybe_unused]] const MatmulCall& call,
                                                  [[maybe_unused]] int iterations, [[maybe_unused]] void* workspace,
                                                  [[maybe_unused]] std::int64_t workspaceBytes,
                                                  [[maybe_unused]] void* stream) {
  std::vector<MatmulOfferTime> times;
#if defined(ATLASCOPE_WITH_CUBLASLT)
  const int offers = matmulAlgorithmCount(call, workspaceBytes);
  auto s = static_cast<cudaStream_t>(stream);
  const EventPair events;
  if (offers == 0 || iterations < 1 || !events.ok) return times;
  for (int i = 0; i < offers; ++i) {
    MatmulOfferTime t;
    // Once outside the capture (cuBLASLt's first call of a kernel may load it).
    bool ok = matmulBf16(call, i, workspace, workspaceBytes, stream) && cudaStreamSynchronize(s) == cudaSuccess;
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    if (ok && cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess) {
      for (int r = 0; r < iterations && ok; ++r) ok = matmulBf16(call, i, workspace, workspaceBytes, stream);
      ok = cudaStreamEndCapture(s, &graph) == cudaSuccess && ok;
    } else {
      ok = false;
    }
    std::size_t nodes = 0;
    ok = ok && cudaGraphGetNodes(graph, nullptr, &nodes) == cudaSuccess;
    if (ok) {
      std::vector<cudaGraphNode_t> list(nodes);
      ok = cudaGraphGetNodes(graph, list.data(), &nodes) == cudaSuccess;
      for (std::size_t n = 0; ok && n < nodes; ++n) {
        cudaGraphNodeType type{};
        if (cudaGraphNodeGetType(list[n], &type) == cudaSuccess && type == cudaGraphNodeTypeMemset) ++t.memsets;
      }
      t.memsets /= iterations;
    }
    ok = ok && cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess;
    float elapsed = 0.f;
    ok = ok && cudaGraphLaunch(exec, s) == cudaSuccess && cudaEventRecord(events.start, s) == cudaSuccess;
    for (int r = 0; r < 3 && ok; ++r) ok = cudaGraphLaunch(exec, s) == cudaSuccess;
    ok = ok && cudaEventRecord(events.stop, s) == cudaSuccess && cudaEventSynchronize(events.stop) == cudaSuccess &&
         cudaEventElapsedTime(&elapsed, events.start, events.stop) == cudaSuccess;
    if (exec) cudaGraphExecDestroy(exec);
    if (graph) cudaGraphDestroy(graph);
    if (ok) t.ms = elapsed / static_cast<float>(3 * iterations);
    if (!ok) cudaGetLastError(); // a refused offer leaves no sticky error behind
    times.push_back(t);
  }
#endif
  return times;
}

} // namespace atlascope::inference::cuda
