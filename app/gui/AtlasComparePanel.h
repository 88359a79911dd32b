#pragma once
// Atlas against atlas (issue 17): two parcellations of the same space scored voxel by voxel with
// the machinery that scores regions against the CCF (core/AtlasComparison.h): the grid used, the
// agreement scores, the scores with A's tree cut at each depth, the one-to-one pairs, splits and
// merges, and for a structure selected in either atlas' tree the structures of the other atlas it
// overlaps, as a table and an overlap chart. "Write report…" writes what `atlascope-cli atlas
// compare A B --out-dir DIR` writes.
//
// Data-driven: the window hands it the open atlases (setAtlases) and the tree's selection
// (showStructure); it knows nothing of the workspace. Decisions:
// - A is the reference and B the compared atlas, as in the CLI; the comparison starts by itself
//   when both are chosen and differ, and again when either or a level changes. A comparison runs
//   off the GUI thread and holds both atlases (shared_ptr), so an atlas may close meanwhile; a
//   result whose choice changed, or that was cancelled, is dropped.
// - Cancel is immediate for the panel (usable at once); the job stops at compareAtlases' next
//   checkpoint (between its stages) and its result is discarded.
// - A selected structure is taken whole (itself and every structure below it, from the leaf
//   labels), whatever its atlas' level; the other atlas' structures at that atlas' chosen level.
//   Counts are voxels of the shared grid inside both atlases (B's level leaving some out: voxels
//   B's chosen set does not cover); Jaccard = |s n o| / |s u o| on those voxels.
// - Atlases are told apart by name (the window's names for its atlas layers, unique).
#include "core/Atlas.h"

#include <QFutureWatcher>
#include <QString>
#include <QWidget>

#include <memory>
#include <vector>

class QChart;
class QComboBox;
class QLabel;
class QProgressBar;
class QPushButton;
class QTableWidget;

namespace atlascope::app {

struct AtlasEntry {
  QString name;
  std::shared_ptr<const Atlas> atlas;
};

class AtlasComparePanel : public QWidget {
  Q_OBJECT
public:
  explicit AtlasComparePanel(QWidget* parent = nullptr);
  // Cancels and waits for its jobs (they hold the atlases, not the panel, but report to it).
  ~AtlasComparePanel() override;

  // The open atlases, in the window's order. The chosen pair stays chosen while both are still
  // open (compared again only when an atlas under a kept name was replaced); otherwise A is the
  // first atlas and B the second. Fewer than two: nothing to compare.
  void setAtlases(std::vector<AtlasEntry> atlases);
  // Chooses A (reference) and B (compared) by name, as the combo boxes do, and compares them.
  void choose(const QString& a, const QString& b);
  // Chooses the levels ("leaf", "depth:N", "major"; CcfLevel's specs), as the level boxes do.
  void chooseLevels(const QString& levelA, const QString& levelB);
  // Compares the current choice again (after a cancel, say).
  void compare();
  // The tree's selection: a structure (tree index) of `atlas`. When `atlas` is A: the structures
  // of B it overlaps; when B, those of A. Another atlas, or -1, clears the overlap view.
  void showStructure(const QString& atlas, int structureIndex);

  QString atlasA() const;
  QString atlasB() const;
  bool isComparing() const { return running_ != nullptr; }
  bool hasComparison() const { return result_ != nullptr; }
  // Stops the running comparison; the panel is usable at once.
  void cancel();
  // Waits for every job started (comparisons, including cancelled ones, and report writes); the
  // awaited comparison is shown before it returns (comparisonReady emitted from within). Not needed
  // for an atlas to close safely (the jobs hold the atlases); for a quit that should not leave
  // threads running.
  void waitForComparison();
  // Writes the report of the comparison shown into `folder` in the background (reportWritten
  // says when); without a comparison, false.
  bool writeReport(const QString& folder);

Q_SIGNALS:
  // A comparison ended: hasComparison() says whether it gave scores; the status line says why not.
  void comparisonReady();
  // A double click on a row of the overlap table: select this structure in that atlas' tree.
  void structureChosen(QString atlas, int structureIndex);
  // `error` is empty when the report was written.
  void reportWritten(QString folder, QString error);

private:
  struct Job;
  struct Result;
  const AtlasEntry* entry(const QString& name) const;
  void fillAtlasBoxes();
  void fillLevelBox(QComboBox* box, const AtlasEntry* atlas);
  void start();
  void progress(const Job* job, const QString& stage, int done, int total);
  void finished(const std::shared_ptr<Job>& job);
  void clearResult();
  void showResult();
  void showOverlap();

  std::vector<AtlasEntry> atlases_;
  std::shared_ptr<Job> running_;         // the comparison whose result is awaited
  std::vector<QFuture<void>> started_;   // every job still running, awaited or not
  std::shared_ptr<const Result> result_; // the comparison shown
  QString structureAtlas_;               // the structure shown: its atlas and tree index
  int structureIndex_ = -1;
  int generation_ = 0; // of the comparisons started, to drop a replaced one's progress
  QComboBox *atlasA_, *atlasB_, *levelA_, *levelB_;
  QPushButton *swap_, *compare_, *cancel_, *report_;
  QProgressBar* progress_;
  QLabel *status_, *grid_, *structure_;
  QTableWidget *scores_, *byDepth_, *overlap_;
  QChart* chart_;
};

} // namespace atlascope::app
