#include "viewer/RegionSurface.h"

#include "core/Error.h"

#include <vtkDiscreteFlyingEdges3D.h>
#include <vtkFieldData.h>
#include <vtkImageData.h>
#include <vtkIntArray.h>
#include <vtkMassProperties.h>
#include <vtkPolyData.h>
#include <vtkPolyDataNormals.h>
#include <vtkQuadricDecimation.h>
#include <vtkTriangleFilter.h>
#include <vtkUnsignedCharArray.h>
#include <vtkWindowedSincPolyDataFilter.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <mutex>
#include <thread>

namespace atlascope::viewer {

namespace {
// Contour, smooth, decimate and orient a 0/1 mask image (padded by one sample), into `result`.
void meshMaskImage(vtkImageData* image, const SurfaceOptions& options, const Progress& progress, vtkPolyData* result) {
  progress("contouring", 1, 5);
  auto contour = vtkSmartPointer<vtkDiscreteFlyingEdges3D>::New();
  contour->SetInputData(image);
  contour->SetValue(0, 1);
  contour->ComputeNormalsOff();
  contour->ComputeGradientsOff();
  contour->ComputeScalarsOff();
  contour->Update();

  progress("smoothing", 2, 5);
  auto smooth = vtkSmartPointer<vtkWindowedSincPolyDataFilter>::New();
  smooth->SetInputConnection(contour->GetOutputPort());
  smooth->SetNumberOfIterations(options.smoothingIterations);
  smooth->SetPassBand(options.passBand);
  smooth->BoundarySmoothingOff();
  smooth->FeatureEdgeSmoothingOff();
  smooth->NonManifoldSmoothingOn();
  smooth->NormalizeCoordinatesOn();
  smooth->Update();

  progress("decimating", 3, 5);
  vtkSmartPointer<vtkPolyData> mesh = smooth->GetOutput();
  if (options.decimation > 0.0) {
    auto decimate = vtkSmartPointer<vtkQuadricDecimation>::New();
    decimate->SetInputData(mesh);
    decimate->SetTargetReduction(options.decimation);
    decimate->VolumePreservationOn();
    decimate->Update();
    mesh = decimate->GetOutput();
  }

  progress("normals", 4, 5);
  auto normals = vtkSmartPointer<vtkPolyDataNormals>::New();
  normals->SetInputData(mesh);
  normals->SplittingOff();
  normals->ConsistencyOn();
  normals->AutoOrientNormalsOn(); // outward, so that lighting and exported meshes agree
  normals->Update();
  result->DeepCopy(normals->GetOutput());
}
} // namespace

std::uint64_t SurfaceOptions::hash() const {
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) {
      h ^= b[i];
      h *= 1099511628211ull;
    }
  };
  const int version = 1; // bump when the pipeline below changes what it produces
  mix(&version, sizeof version);
  mix(&smoothingIterations, sizeof smoothingIterations);
  mix(&passBand, sizeof passBand);
  mix(&decimation, sizeof decimation);
  mix(&downsample, sizeof downsample);
  mix(&downsampleAboveVoxels, sizeof downsampleAboveVoxels);
  return h;
}

std::int64_t structureVoxelCount(const Atlas& atlas, int structureIndex) {
  const auto mask = codeMaskFor(atlas.annotation(), atlas.structures(), structureIndex);
  const auto hist = atlas.annotation().codeHistogram();
  std::int64_t n = 0;
  for (std::size_t c = 0; c < mask.size(); ++c)
    if (mask[c]) n += hist[c];
  return n;
}

double enclosedVolume(vtkPolyData* surface) {
  if (!surface || surface->GetNumberOfPolys() == 0) return 0.0;
  auto tri = vtkSmartPointer<vtkTriangleFilter>::New();
  tri->SetInputData(surface);
  auto mass = vtkSmartPointer<vtkMassProperties>::New();
  mass->SetInputConnection(tri->GetOutputPort());
  mass->Update();
  return mass->GetVolume();
}

vtkSmartPointer<vtkPolyData> buildRegionSurface(const Atlas& atlas, int structureIndex, const SurfaceOptions& options,
                                                const Progress& progress) {
  const AnnotationVolume& ann = atlas.annotation();
  const auto mask = codeMaskFor(ann, atlas.structures(), structureIndex);
  const auto& codes = ann.codes();
  const auto size = ann.size();
  const auto spacing = ann.spacingUm();

  progress("finding voxels", 0, 5);
  // Bounding box of the mask, so that small structures mesh a small image.
  std::array<std::int64_t, 3> lo{size[0], size[1], size[2]}, hi{-1, -1, -1};
  for (std::int64_t k = 0; k < size[2]; ++k)
    for (std::int64_t j = 0; j < size[1]; ++j) {
      const std::size_t row = static_cast<std::size_t>(size[0] * (j + size[1] * k));
      for (std::int64_t i = 0; i < size[0]; ++i)
        if (mask[codes[row + static_cast<std::size_t>(i)]]) {
          lo[0] = std::min(lo[0], i);
          hi[0] = std::max(hi[0], i);
          lo[1] = std::min(lo[1], j);
          hi[1] = std::max(hi[1], j);
          lo[2] = std::min(lo[2], k);
          hi[2] = std::max(hi[2], k);
        }
    }
  auto result = vtkSmartPointer<vtkPolyData>::New();
  if (hi[0] < 0) return result;

  // One block of padding on each side closes the surface where the mask touches the volume's edge.
  std::int64_t f = std::max(1, options.downsample);
  if (options.downsampleAboveVoxels > 0 && f == 1) {
    const auto hist = ann.codeHistogram();
    std::int64_t voxels = 0;
    for (std::size_t c = 0; c < mask.size(); ++c)
      if (mask[c]) voxels += hist[c];
    if (voxels > options.downsampleAboveVoxels) f = 2;
  }
  std::array<std::int64_t, 3> blocks{};
  std::array<int, 3> dims{};
  for (std::size_t a = 0; a < 3; ++a) {
    lo[a] = (lo[a] / f) * f; // align blocks to the grid so that cached meshes agree
    blocks[a] = (hi[a] - lo[a]) / f + 1;
    dims[a] = static_cast<int>(blocks[a] + 2);
  }
  auto image = vtkSmartPointer<vtkImageData>::New();
  image->SetDimensions(dims[0], dims[1], dims[2]);
  image->SetSpacing(spacing[0] * f, spacing[1] * f, spacing[2] * f);
  // Sample (block) centres in CCF micrometres: voxel centres at (index + 0.5) * spacing.
  image->SetOrigin((static_cast<double>(lo[0] - f) + 0.5 * f) * spacing[0],
                   (static_cast<double>(lo[1] - f) + 0.5 * f) * spacing[1],
                   (static_cast<double>(lo[2] - f) + 0.5 * f) * spacing[2]);
  image->AllocateScalars(VTK_UNSIGNED_CHAR, 1);
  auto* out = static_cast<unsigned char*>(image->GetScalarPointer());
  std::memset(out, 0, static_cast<std::size_t>(dims[0]) * dims[1] * dims[2]);
  if (f == 1) {
    for (std::int64_t k = lo[2]; k <= hi[2]; ++k)
      for (std::int64_t j = lo[1]; j <= hi[1]; ++j) {
        const std::size_t src = static_cast<std::size_t>(size[0] * (j + size[1] * k));
        const std::size_t dst = static_cast<std::size_t>(dims[0]) *
                                (static_cast<std::size_t>(j - lo[1] + 1) +
                                 static_cast<std::size_t>(dims[1]) * static_cast<std::size_t>(k - lo[2] + 1));
        for (std::int64_t i = lo[0]; i <= hi[0]; ++i)
          out[dst + static_cast<std::size_t>(i - lo[0] + 1)] = mask[codes[src + static_cast<std::size_t>(i)]];
      }
  } else {
    // Majority of each f^3 block (voxels beyond the volume count as outside).
    const std::int64_t need = (f * f * f) / 2 + 1;
    for (std::int64_t bk = 0; bk < blocks[2]; ++bk)
      for (std::int64_t bj = 0; bj < blocks[1]; ++bj)
        for (std::int64_t bi = 0; bi < blocks[0]; ++bi) {
          std::int64_t inside = 0;
          for (std::int64_t k = lo[2] + bk * f; k < std::min(size[2], lo[2] + (bk + 1) * f); ++k)
            for (std::int64_t j = lo[1] + bj * f; j < std::min(size[1], lo[1] + (bj + 1) * f); ++j) {
              const std::size_t row = static_cast<std::size_t>(size[0] * (j + size[1] * k));
              for (std::int64_t i = lo[0] + bi * f; i < std::min(size[0], lo[0] + (bi + 1) * f); ++i)
                inside += mask[codes[row + static_cast<std::size_t>(i)]];
            }
          out[static_cast<std::size_t>((bi + 1) + dims[0] * ((bj + 1) + static_cast<std::int64_t>(dims[1]) *
                                                                            (bk + 1)))] = inside >= need ? 1 : 0;
        }
  }

  meshMaskImage(image, options, progress, result);

  const Structure& s = atlas.structures()[structureIndex];
  auto id = vtkSmartPointer<vtkIntArray>::New();
  id->SetName("StructureId");
  id->InsertNextValue(static_cast<int>(s.id));
  result->GetFieldData()->AddArray(id);
  progress("done", 5, 5);
  return result;
}

vtkSmartPointer<vtkPolyData> buildLabelSurface(const RegionVolume& volume, std::int32_t label,
                                               const SurfaceOptions& options, const Progress& progress) {
  const auto& size = volume.size;
  std::array<std::int64_t, 3> lo{size[0], size[1], size[2]}, hi{-1, -1, -1};
  for (std::int64_t k = 0; k < size[2]; ++k)
    for (std::int64_t j = 0; j < size[1]; ++j)
      for (std::int64_t i = 0; i < size[0]; ++i)
        if (volume.at(i, j, k) == label) {
          lo = {std::min(lo[0], i), std::min(lo[1], j), std::min(lo[2], k)};
          hi = {std::max(hi[0], i), std::max(hi[1], j), std::max(hi[2], k)};
        }
  auto result = vtkSmartPointer<vtkPolyData>::New();
  if (hi[0] < 0) return result;
  std::array<int, 3> dims{};
  for (std::size_t a = 0; a < 3; ++a) dims[a] = static_cast<int>(hi[a] - lo[a] + 3); // one voxel of padding each side
  auto image = vtkSmartPointer<vtkImageData>::New();
  image->SetDimensions(dims[0], dims[1], dims[2]);
  const double u = volume.voxelUm;
  image->SetSpacing(u, u, u);
  image->SetOrigin((static_cast<double>(lo[0]) - 0.5) * u, (static_cast<double>(lo[1]) - 0.5) * u,
                   (static_cast<double>(lo[2]) - 0.5) * u);
  image->AllocateScalars(VTK_UNSIGNED_CHAR, 1);
  auto* out = static_cast<unsigned char*>(image->GetScalarPointer());
  std::memset(out, 0, static_cast<std::size_t>(dims[0]) * dims[1] * dims[2]);
  for (std::int64_t k = lo[2]; k <= hi[2]; ++k)
    for (std::int64_t j = lo[1]; j <= hi[1]; ++j)
      for (std::int64_t i = lo[0]; i <= hi[0]; ++i)
        out[static_cast<std::size_t>(
            (i - lo[0] + 1) + dims[0] * ((j - lo[1] + 1) + static_cast<std::int64_t>(dims[1]) * (k - lo[2] + 1)))] =
            volume.at(i, j, k) == label;
  meshMaskImage(image, options, progress, result);
  auto id = vtkSmartPointer<vtkIntArray>::New();
  id->SetName("RegionLabel");
  id->InsertNextValue(label);
  result->GetFieldData()->AddArray(id);
  return result;
}

std::vector<vtkSmartPointer<vtkPolyData>> meshRegionVolume(const RegionVolume& volume, int regions,
                                                           const SurfaceOptions& options, const Progress& progress) {
  std::vector<vtkSmartPointer<vtkPolyData>> out(static_cast<std::size_t>(std::max(0, regions)));
  // Regions meshed on every core (separate VTK pipelines); progress and cancel on this thread.
  std::atomic<int> next{0}, done{0};
  std::atomic<bool> stop{false};
  std::mutex failure;
  std::string error;
  auto worker = [&] {
    for (int l = next++; l < regions && !stop; l = next++) {
      try {
        auto mesh = buildLabelSurface(volume, l, options);
        if (mesh->GetNumberOfPoints() > 0) out[static_cast<std::size_t>(l)] = mesh;
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(failure);
        error = e.what();
        stop = true;
      }
      ++done;
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < std::max(1u, std::thread::hardware_concurrency()); ++t) pool.emplace_back(worker);
  try {
    while (done < regions && !stop) {
      progress("region surfaces", done, regions);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  } catch (...) { // cancelled: stop the workers before the volume they read goes away
    stop = true;
    for (auto& t : pool) t.join();
    throw;
  }
  for (auto& t : pool) t.join();
  if (!error.empty()) throw Error("region surfaces: " + error);
  progress("region surfaces", regions, regions);
  return out;
}

} // namespace atlascope::viewer
