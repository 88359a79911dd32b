#include "viewer/MeshIO.h"

#include "core/Atlas.h"
#include "core/AtomicFile.h"
#include "core/Error.h"

#include <vtkCellArray.h>
#include <vtkOBJWriter.h>
#include <vtkPLYWriter.h>
#include <vtkPoints.h>
#include <vtkPolyData.h>
#include <vtkSTLWriter.h>
#include <vtkXMLPolyDataReader.h>
#include <vtkXMLPolyDataWriter.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

namespace atlascope::viewer {

vtkSmartPointer<vtkPolyData> toPolyData(const TriangleMesh& mesh) {
  auto points = vtkSmartPointer<vtkPoints>::New();
  points->SetDataTypeToFloat();
  points->SetNumberOfPoints(static_cast<vtkIdType>(mesh.vertexCount()));
  for (std::size_t i = 0; i < mesh.vertexCount(); ++i)
    points->SetPoint(static_cast<vtkIdType>(i), mesh.points[3 * i], mesh.points[3 * i + 1], mesh.points[3 * i + 2]);
  auto polys = vtkSmartPointer<vtkCellArray>::New();
  for (std::size_t i = 0; i + 2 < mesh.triangles.size(); i += 3) {
    const vtkIdType t[3] = {mesh.triangles[i], mesh.triangles[i + 1], mesh.triangles[i + 2]};
    polys->InsertNextCell(3, t);
  }
  auto poly = vtkSmartPointer<vtkPolyData>::New();
  poly->SetPoints(points);
  poly->SetPolys(polys);
  return poly;
}

namespace fs = std::filesystem;

namespace {
std::string extensionOf(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}
} // namespace

void writeMesh(vtkPolyData* mesh, const std::string& path) {
  const std::string ext = extensionOf(path);
  const std::string tmp = temporaryPathFor(path);
  int ok = 0;
  if (ext == ".obj") {
    auto w = vtkSmartPointer<vtkOBJWriter>::New();
    w->SetInputData(mesh);
    w->SetFileName(tmp.c_str());
    ok = w->Write();
  } else if (ext == ".ply") {
    auto w = vtkSmartPointer<vtkPLYWriter>::New();
    w->SetInputData(mesh);
    w->SetFileName(tmp.c_str());
    w->SetFileTypeToBinary();
    ok = w->Write();
  } else if (ext == ".stl") {
    auto w = vtkSmartPointer<vtkSTLWriter>::New();
    w->SetInputData(mesh);
    w->SetFileName(tmp.c_str());
    w->SetFileTypeToBinary();
    ok = w->Write();
  } else if (ext == ".vtp") {
    auto w = vtkSmartPointer<vtkXMLPolyDataWriter>::New();
    w->SetInputData(mesh);
    w->SetFileName(tmp.c_str());
    w->SetDataModeToAppended();
    w->SetCompressorTypeToZLib();
    ok = w->Write();
  } else {
    throw FileError(path, "unknown mesh format '" + ext + "' (use .obj, .ply, .stl or .vtp)");
  }
  std::error_code ec;
  if (!ok || !fs::exists(tmp, ec)) {
    std::remove(tmp.c_str());
    throw FileError(path, "cannot write the mesh (is the folder writable?)");
  }
  moveIntoPlace(tmp, path);
}

vtkSmartPointer<vtkPolyData> readVtp(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return nullptr;
  auto r = vtkSmartPointer<vtkXMLPolyDataReader>::New();
  r->SetFileName(path.c_str());
  r->Update();
  if (r->GetErrorCode() != 0 || !r->GetOutput() || r->GetOutput()->GetNumberOfPoints() == 0) return nullptr;
  vtkSmartPointer<vtkPolyData> out = r->GetOutput();
  return out;
}

} // namespace atlascope::viewer
