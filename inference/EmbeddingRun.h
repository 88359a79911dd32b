#pragma once
// Embedding a whole dataset, from the file on disk to embeddings on disk.
//
// Three things overlap: a reader thread streams the expression panel from the file into a table on
// the compute device (bf16 on a GPU: 4M x 500 = 4 GB; float32 on the CPU), the main thread
// computes a chunk's neighbourhoods (multi-threaded) and queues its batches, and a writer thread
// takes each finished chunk into OUT.parts/ (atomically, so that a cancelled or crashed run resumes
// from the last completed chunk) and into the output, which is committed atomically at the end.
// A chunk waits only for the table rows its neighbourhoods reach, and the device never waits for
// a write.
#include "core/CellTable.h"
#include "core/Progress.h"
#include "inference/ModelFile.h"

#include <functional>
#include <map>
#include <string>

namespace atlascope::inference {

class Distributed;

struct EmbedRunOptions {
  std::string device = "auto"; // auto, cuda, cpu
  std::int64_t batchTokens =
      0;                       // 0: 4096 on the CPU (measured 2.3x faster than 65536: see Embedding.h), 393216 on a GPU
  std::int64_t chunkCells = 0; // 0: 20000 on the CPU, 250000 on a GPU
  // Short chunks at both ends of each rank's share (ChunkLayout.h); false: uniform chunks, the
  // layout before (for comparisons). A resumed run keeps the layout its parts were written in.
  bool taperedChunks = true;
  bool reorderGenes = false;
  // Batches of one neighbourhood size only (no padding, unmasked fused attention). Off by default:
  // measured slower on the H200 (4M cells: 40k vs 56k cells/s), the many size buckets cost more
  // than the padding they save.
  bool exactLengths = false;
  // Padded batches with a key mask, the path before packing (for comparisons). By default a GPU
  // in bf16 embeds packed batches: the real tokens only, attended in place by variable-length
  // flash attention (Embedding.h); the CPU keeps padded batches (its attention would scatter).
  bool paddedBatches = false;
  // The next chunk's neighbourhoods between two chunks on the main thread, as before they moved to
  // a thread of their own while the batches are queued (for comparisons).
  bool serialNeighborhoods = false;
  // Threads that build the neighbourhood index at the start (0: every core; 1: one, as before).
  int indexThreads = 0;
  // Batches built (makeBatch, packBatch, pinning) on host threads, this many ahead of the device;
  // 0: on the thread that queues the device's work, between batches (as before, for comparisons).
  // Building one packed batch (393k tokens) took ~17 ms on the H200's host: on the queueing
  // thread, 17.8 of the 35.5 s model phase of a 4M-cell run. The batches are the same either way.
  int batchLookahead = 3;
  // Fused CUDA kernels (CellTransformer::setFusedKernels) where the build has them.
  bool fusedKernels = true;
  // With them, the encoder's short-attention kernel and the fused GEMM + GELU
  // (CellTransformer::setShortAttention, setGemmGelu); false: the previous path.
  bool shortAttention = true;
  bool gemmGelu = true;
  // Which short-attention kernel (CellTransformer::setAttentionVariant): 0 the default, 1 the one
  // before it, 2.. other shapes of the default (`bench attention` lists them).
  int attentionVariant = 0;
  // The fused pool's kernel before its grouped second pass (CellTransformer::setPoolKernelBefore).
  bool poolKernelBefore = false;
  // The fused pool's first pass one token a warp at a time, as before (CellTransformer::
  // setPoolTokenPairs(false); the same bits).
  bool poolSingleTokens = false;
  // The fused GEMM + GELU's epilogue by erff instead of geluExp2 (CellTransformer::setErffGelu).
  bool erffGelu = false;
  // The fused GEMM + GELU by the epilogue before (CellTransformer::setLinCombGelu; the same bits).
  bool linCombGelu = false;
  // The encoder's first feed-forward layers in FP8 (CellTransformer::setFp8FeedForward).
  bool fp8FeedForward = false;
  bool fp8ErfGelu = false; // its GELU in the erf form (CellTransformer::setFp8ErfGelu)
  // The next chunk's first batches built while this chunk's last ones are queued, its order and
  // batch plan made on a host thread, its order copied to the device without waiting for the
  // queue, and the chunks' pinned host copies allocated once on a thread of their own; false: each
  // chunk planned, its batches started and its host copy allocated on the queueing thread once the
  // previous chunk's are queued, and its order copied after the device's queue has drained (as
  // before, for comparisons).
  bool batchesAcrossChunks = true;
  // And embedding's small stages as one kernel each (CellTransformer::setFusedPool).
  bool fusedPool = true;
  // The first encoder layer's q, k and v computed once per cell in the token table
  // (CellTransformer::setFirstLayerPerCell); false: per token of each neighbourhood, as before.
  bool firstLayerPerCell = true;
  // The second feed-forward product accumulating into its residual, its bias in the LayerNorm
  // after it (CellTransformer::setResidualInProduct; opt-in); false: the product, then add +
  // LayerNorm.
  bool residualInProduct = false;
  // The first layer's residual assembled as packed tokens (as before), not read from the wide table
  // (CellTransformer::setFirstResidualFromTable).
  bool assembleFirstTokens = false;
  // With roundShapes: add_zero_attn's slots stored in the packed batches, the layout before the
  // attention kernels appended them (Batch::virtualZeroSlot), for comparisons.
  bool storedZeroSlot = false;
  // Packed batches on a GPU rounded to repeating row counts (gpuEmbeddingShape), so that cuBLASLt
  // searches a kernel for a few shapes instead of each batch's (~3 ms of host time per new shape).
  // Off: exact shapes (for comparisons).
  bool roundShapes = true;
  // Packed batches uploaded on a stream of their own, overlapping the compute (off: on the compute
  // stream, as before).
  bool uploadStream = true;
  // Finished chunks copied back to the host on a stream of their own (ChunkCopier in
  // EmbeddingRun.cpp); off: on the compute stream, between batches (as before, for comparisons).
  bool chunkCopyStream = true;
  // A GPU run's finished chunks stay on the device until the writer thread copies each (through
  // two pinned 32 MiB slices, on the chunks' copy stream) into its own buffer just before writing
  // it. False: each is copied into a
  // pinned host buffer as it finishes, the buffers allocated as the run starts (as before, for
  // comparisons): pinning 3 x 384 MB held the driver for ~1 s while the first chunk's batches
  // were being queued, and the device waited (0.5-0.8 s of a 4M-cell run on the H200). The cost:
  // up to three finished chunks on the device (1.1 GB at 250,000 cells and E 384); on a GPU short
  // of memory, false (--chunk-host-buffers) or smaller chunks.
  bool writerCopies = true;
  // Non-empty (GPU builds with Kineto): the kernels of the first chunk's first traceBatches
  // batches are written there as a Chrome trace (KernelTrace; scripts/trace-summary.py reads it),
  // after a synchronisation; with traceFromBatch > 0, those of the run's batches traceFromBatch..
  // (any chunk) without one, so that the trace shows the run's steady state: where the device
  // waits for the host, which an empty queue at the trace's start would hide.
  std::string traceFile;
  int traceBatches = 8;
  std::int64_t traceFromBatch = 0;
  bool resume = true;
  int gzip = 0; // compression of the output embedding
  // Also write the embeddings into obsm[obsmKey] of a copy of the (h5ad) input; cells skipped
  // for bad positions get NaN rows. The input file is never modified.
  std::string h5adOut;
  std::string obsmKey = "X_celltransformer";
  bool profile = false; // time the model's stages on the first chunk (synchronising)
  const CancellationToken* cancel = nullptr;
  // Sharded over the ranks of a job (null: this process alone): rank r embeds the r-th contiguous
  // range of whole chunks into OUT.parts/ (reading only the table rows of the sections its cells
  // are in), rank 0 also assembles every rank's parts into the one output as they appear (an
  // HDF5 dataset written block by block) and commits it once all ranks are done. The chunks'
  // layout is recorded in the parts folder, so a run resumes with any number of ranks. The
  // folder must be shared by the ranks (one host, or a shared file system).
  Distributed* dist = nullptr;
  // stage, cells done, total, cells/s
  std::function<void(const std::string&, std::int64_t, std::int64_t, double)> progress;
};

struct EmbedRunResult {
  std::int64_t cells = 0;
  std::int64_t resumedCells = 0;
  double meanNeighbors = 0;
  double seconds = 0;        // end to end: reading, embedding, writing
  double cellsPerSecond = 0; // cells embedded in this run / seconds
  std::string device;
  // Where the time went (seconds; these overlap, so they need not add up): read = the reader
  // thread in the file, upload = the main thread waiting for table rows, model = queueing the
  // batches (on a GPU the device runs behind), write = the writer thread.
  double readSeconds = 0, uploadSeconds = 0, neighborhoodSeconds = 0, modelSeconds = 0, writeSeconds = 0;
  double batchSeconds = 0;      // of modelSeconds: waiting for (or building) batches and queueing their upload
  double batchBuildSeconds = 0; // building batches on the host, summed over the threads that do it
  // Of the main thread's time between chunks: allocating a chunk's pinned host copy, and handing
  // it to the writer (which waits while two chunks are pending).
  double hostBufferSeconds = 0, submitSeconds = 0;
  // On a GPU, from events around each batch on the compute stream (DeviceTimeline in
  // EmbeddingRun.cpp says what they hold): the batches' time on the device, and the device
  // waiting between batches (in all, before a chunk's first batch, the longest wait). The wait
  // before the first batch is in startSeconds instead. 0 in LibTorch builds without CUDA events.
  double deviceBusySeconds = 0, deviceIdleSeconds = 0, deviceIdleAtChunkStartsSeconds = 0, deviceIdleMaxSeconds = 0;
  // What does not overlap the device: from the start to the first batch queued, and from the last
  // batch queued to the end (the device finishing what is queued, the last writes, the commit).
  double startSeconds = 0, finishSeconds = 0;
  std::int64_t chunks = 0;           // in the run's layout (all ranks)
  std::int64_t chunksBuiltAhead = 0; // chunks whose first batches started while the previous one's were queued
  bool taperedChunks = false;        // that layout tapered at its ends (ChunkLayout.h)
  double peakGpuGiB = 0;
  std::map<std::string, double> profile;    // stage -> seconds, first chunk (with --profile)
  int worldSize = 1, rank = 0;              // of a sharded run (rank 0's result covers the output)
  bool packedBatches = false;               // packed batches, variable-length attention (paddedBatches)
  bool fusedKernels = false;                // fused CUDA kernels used
  bool shortAttention = false;              // the short-attention kernel used
  int attentionVariant = 0;                 // which one (cuda::shortAttentionVariantName)
  bool poolKernelBefore = false;            // the fused pool's kernel before its grouped second pass
  bool poolTokenPairs = false;              // the fused pool's first pass two tokens a warp at a time
  bool gemmGelu = false;                    // the fused GEMM + GELU used
  bool erffGelu = false;                    // its epilogue by erff (not geluExp2)
  bool linCombGelu = false;                 // by the epilogue before (EmbedRunOptions::linCombGelu)
  bool fp8FeedForward = false;              // the first feed-forward layers in FP8 (e4m3)
  bool fp8ErfGelu = false;                  // their GELU in the erf form (not tanh)
  std::int64_t fp8Fallbacks = 0;            // encoder layer calls that ran them in float32 (no kernels)
  bool roundShapes = false;                 // packed batches rounded to repeating row counts
  bool virtualZeroSlot = false;             // their add_zero_attn slots appended by the kernels, not stored
  std::int64_t virtualZeroSlotDeclines = 0; // attention layers of such batches that ran the padded path
  bool fusedPool = false;                   // the fused token gather, pool and decoder attention used
  bool firstLayerPerCell = false;           // the table held the first layer's q|k|v (4E columns)
  std::int64_t firstLayerDeclines = 0;      // batches whose first layer ran per token all the same
  bool firstResidualFromTable = false;      // every batch's first residual read from the table
  bool residualInProduct = false;           // the second feed-forward product added the residual
  bool chunkCopyStream = false;             // finished chunks copied back on a stream of their own
  bool writerCopies = false;                // finished chunks kept on the device, copied by the writer
  int tracedBatches = 0;                    // batches in the kernel trace (traceFile)
  std::vector<std::string> warnings;
};

EmbedRunResult embedDataset(ModelFile& model, const std::string& dataPath, const ColumnOptions& columns,
                            const std::string& outPath, const EmbedRunOptions& options);

} // namespace atlascope::inference
