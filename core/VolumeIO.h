#pragma once
// Readers for the volume formats the CCF ships in.
//
// Why a own parser on zlib rather than Teem (libteem-dev): Teem reports errors through a global
// biff stack with messages that do not name the problem the way our users need ("sizes say
// 77 M voxels, data holds 12 M"), it is not on the GPU machine, and the subset of NRRD the CCF
// and its tools use (one file or a detached .nhdr, raw/gzip, a handful of fields) is small enough
// to parse carefully and test exhaustively. NIfTI-1 is a fixed 348-byte header.
#include "core/Volume.h"

#include <string>

namespace atlascope {

// NRRD (.nrrd with attached data, or .nhdr with a detached `data file`): encodings raw and gzip,
// any integer or float type, either endianness. Spacing comes from `spacings` or the norms of
// `space directions`; `space` is ignored (the CCF files state it wrongly; FORMATS.md).
Volume readNrrd(const std::string& path);

// NIfTI-1 single file (.nii / .nii.gz) or pair (.hdr + .img), either endianness.
Volume readNifti(const std::string& path);

// Dispatches on the extension (.nrrd, .nhdr, .nii, .nii.gz, .hdr).
Volume readVolume(const std::string& path);

} // namespace atlascope
