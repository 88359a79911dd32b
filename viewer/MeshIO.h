#pragma once
#include <vtkSmartPointer.h>

#include <string>

class vtkPolyData;

namespace atlascope {
struct TriangleMesh;
}

namespace atlascope::viewer {

// An atlas' own structure mesh (Atlas::readMesh: BrainGlobe OBJ or Draco meshes, in Atlascope
// micrometres) as polydata the scene can draw like a surface built from the labels.
vtkSmartPointer<vtkPolyData> toPolyData(const TriangleMesh& mesh);

// Writes a mesh as OBJ, PLY, STL or VTP (by extension) atomically: into a temporary file beside
// the target, renamed over it only when complete, so a crash never leaves half a file.
void writeMesh(vtkPolyData* mesh, const std::string& path);

// Reads a VTP written by writeMesh; nullptr when the file is missing or unreadable.
vtkSmartPointer<vtkPolyData> readVtp(const std::string& path);

} // namespace atlascope::viewer
