#include "core/Endian.h"
#include "core/Error.h"
#include "core/Gzip.h"
#include "core/VolumeIO.h"

#include <cmath>
#include <filesystem>

namespace atlascope {
namespace {

// Field offsets of the NIfTI-1 header (nifti1.h).
constexpr std::size_t kHeaderSize = 348;
constexpr std::size_t kDim = 40, kDatatype = 70, kPixdim = 76, kVoxOffset = 108, kXyztUnits = 123, kMagic = 344;

std::vector<std::uint8_t> readMaybeGzipped(const std::string& path) {
  std::vector<std::uint8_t> bytes = readFileBytes(path);
  if (looksGzipped(bytes.data(), bytes.size())) return inflateAll(bytes.data(), bytes.size(), path);
  return bytes;
}

template <class T> T get(const std::vector<std::uint8_t>& h, std::size_t off, bool swap) {
  T v;
  std::memcpy(&v, h.data() + off, sizeof v);
  if (swap) swapBytes(reinterpret_cast<std::uint8_t*>(&v), sizeof v, sizeof v);
  return v;
}

bool endsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

} // namespace

Volume readNifti(const std::string& path) {
  const std::vector<std::uint8_t> file = readMaybeGzipped(path);
  if (file.size() < kHeaderSize)
    throw FileError(path, "too short for a NIfTI-1 header (" + std::to_string(file.size()) + " bytes)");
  bool swap = false;
  std::int32_t sizeofHdr = get<std::int32_t>(file, 0, false);
  if (sizeofHdr != 348) {
    swap = true;
    sizeofHdr = get<std::int32_t>(file, 0, true);
    if (sizeofHdr != 348) throw FileError(path, "not a NIfTI-1 file (sizeof_hdr is not 348)");
  }
  const std::string magic(reinterpret_cast<const char*>(file.data() + kMagic), 3);
  if (magic != "n+1" && magic != "ni1") throw FileError(path, "not a NIfTI-1 file (magic is not n+1 or ni1)");

  Volume vol;
  const auto ndim = get<std::int16_t>(file, kDim, swap);
  if (ndim < 1 || ndim > 7) throw FileError(path, "invalid dim[0] = " + std::to_string(ndim));
  for (int a = 0; a < 7; ++a) {
    const auto d = get<std::int16_t>(file, kDim + 2 * (a + 1), swap);
    if (a < ndim && d < 1) throw FileError(path, "invalid size along axis " + std::to_string(a));
    if (a < 3)
      vol.size[a] = a < ndim ? d : 1;
    else if (a < ndim && d != 1)
      throw FileError(path,
                      "only 3D volumes are supported (dim[" + std::to_string(a + 1) + "] = " + std::to_string(d) + ")");
  }
  switch (get<std::int16_t>(file, kDatatype, swap)) {
  case 2: vol.type = ScalarType::UInt8; break;
  case 4: vol.type = ScalarType::Int16; break;
  case 8: vol.type = ScalarType::Int32; break;
  case 16: vol.type = ScalarType::Float32; break;
  case 64: vol.type = ScalarType::Float64; break;
  case 256: vol.type = ScalarType::Int8; break;
  case 512: vol.type = ScalarType::UInt16; break;
  case 768: vol.type = ScalarType::UInt32; break;
  case 1024: vol.type = ScalarType::Int64; break;
  case 1280: vol.type = ScalarType::UInt64; break;
  default:
    throw FileError(path, "unsupported NIfTI datatype " + std::to_string(get<std::int16_t>(file, kDatatype, swap)));
  }
  for (int a = 0; a < 3; ++a) {
    const float p = get<float>(file, kPixdim + 4 * (a + 1), swap);
    vol.spacing[a] = (std::isfinite(p) && p > 0) ? p : 1.0;
  }
  switch (file[kXyztUnits] & 0x07) {
  case 1:
    for (double& s : vol.spacing) s *= 1000.0;
    vol.unit = "mm";
    break; // metres -> mm
  case 2: vol.unit = "mm"; break;
  case 3: vol.unit = "um"; break;
  default: break;
  }

  const std::size_t width = scalarSize(vol.type);
  const std::size_t expected = static_cast<std::size_t>(vol.voxelCount()) * width;
  std::vector<std::uint8_t> pairData;
  const std::uint8_t* data = nullptr;
  std::size_t available = 0;
  std::string dataPath = path;
  if (magic == "n+1") {
    const float off = get<float>(file, kVoxOffset, swap);
    // Compared as a float first: casting an infinite or huge vox_offset to an integer is undefined.
    if (off > static_cast<float>(file.size())) throw FileError(path, "vox_offset points past the end of the file");
    const std::size_t offset = off >= kHeaderSize ? static_cast<std::size_t>(off) : kHeaderSize;
    if (offset > file.size()) throw FileError(path, "vox_offset points past the end of the file");
    data = file.data() + offset;
    available = file.size() - offset;
  } else {
    std::string img = path;
    if (endsWith(img, ".hdr.gz"))
      img = img.substr(0, img.size() - 7) + ".img.gz";
    else if (endsWith(img, ".hdr"))
      img = img.substr(0, img.size() - 4) + ".img";
    if (!std::filesystem::exists(img) && std::filesystem::exists(img + ".gz")) img += ".gz";
    dataPath = img;
    pairData = readMaybeGzipped(img);
    data = pairData.data();
    available = pairData.size();
  }
  if (available < expected)
    throw FileError(dataPath, "data length disagrees with the header: " + std::to_string(vol.size[0]) + "x" +
                                  std::to_string(vol.size[1]) + "x" + std::to_string(vol.size[2]) + " " +
                                  scalarName(vol.type) + " need " + std::to_string(expected) +
                                  " bytes, the file holds " + std::to_string(available));
  vol.bytes.assign(data, data + expected);
  if (swap) swapBytes(vol.bytes.data(), vol.bytes.size(), width);
  return vol;
}

Volume readVolume(const std::string& path) {
  if (endsWith(path, ".nrrd") || endsWith(path, ".nhdr")) return readNrrd(path);
  if (endsWith(path, ".nii") || endsWith(path, ".nii.gz") || endsWith(path, ".hdr") || endsWith(path, ".hdr.gz"))
    return readNifti(path);
  throw FileError(path, "unknown volume format (expected .nrrd, .nhdr, .nii, .nii.gz or .hdr)");
}

} // namespace atlascope
