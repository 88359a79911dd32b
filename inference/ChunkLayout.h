#pragma once
// How an embedding run cuts its cells into chunks: the unit of resuming (one part file each), of
// writing, and of sharing out across ranks (each rank embeds a contiguous range of them).
//
// Tapered (the default): each rank's share of the cells starts and ends with short chunks (1/8,
// 1/8, 1/4, 1/2 of chunkCells, mirrored at the end) around full ones. Two costs of a run do not
// overlap the device's work: before the first batch, the first chunk's neighbourhoods; after the
// last, the last chunk's copy to the host and its two writes (part file and output: 384 MB each
// at 250,000 cells of 384 floats). Short end chunks make both small. Uniform: every chunk
// chunkCells (the layout before, for comparisons).
//
// A run writes its layout into the parts folder's run.json, and a resumed run takes it from there,
// so that its part files keep their meaning whatever the number of ranks or the defaults.
#include <cstdint>
#include <utility>
#include <vector>

namespace atlascope::inference {

struct ChunkLayout {
  std::vector<std::int64_t> starts{0}; // chunk k: cells [starts[k], starts[k + 1]); back() == cells

  std::int64_t chunks() const { return static_cast<std::int64_t>(starts.size()) - 1; }
  std::int64_t cells() const { return starts.back(); }
  std::int64_t begin(std::int64_t k) const { return starts[static_cast<std::size_t>(k)]; }
  std::int64_t count(std::int64_t k) const { return begin(k + 1) - begin(k); }
  // Rank `rank` of `world`: the chunks [first, last) that start in its share of the cells,
  // [cells * rank / world, cells * (rank + 1) / world). Over the ranks, every chunk exactly once.
  std::pair<std::int64_t, std::int64_t> rankChunks(int rank, int world) const;
  // Starts at 0, ends at `cells`, no empty chunk: what a layout read back from a file must be.
  bool valid(std::int64_t cells) const;
};

ChunkLayout uniformChunks(std::int64_t cells, std::int64_t chunkCells);
// Each of the `world` shares tapered as above; a share shorter than 2 chunkCells tapers around
// half of itself; one under 16 cells, or with chunkCells under 8, is cut uniformly.
ChunkLayout taperedChunks(std::int64_t cells, std::int64_t chunkCells, int world);

} // namespace atlascope::inference
