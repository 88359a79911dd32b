#pragma once
// Undo/redo of view changes (a structure's visibility, colour and opacity; camera presets and
// resets): each change is recorded after it is made, as two functions that set the state before
// and after. Consecutive opacity changes of one structure (a dragged slider) merge into one step.
#include <QUndoCommand>

#include <functional>

namespace atlascope::app {

class ViewChange : public QUndoCommand {
public:
  // `mergeKey` >= 0: merges with the previous change of the same kind (`kind`) and key.
  ViewChange(const QString& text, std::function<void()> undo, std::function<void()> redo, int kind = -1, int mergeKey = -1)
      : undo_(std::move(undo)), redo_(std::move(redo)), kind_(kind), key_(mergeKey) {
    setText(text);
  }
  void undo() override { undo_(); }
  // The change is already made when it is recorded: the first redo (QUndoStack::push) skips.
  void redo() override {
    if (pushed_) redo_();
    pushed_ = true;
  }
  int id() const override { return kind_; }
  bool mergeWith(const QUndoCommand* other) override {
    const auto* o = static_cast<const ViewChange*>(other);
    if (o->key_ != key_ || key_ < 0) return false;
    redo_ = o->redo_; // undo keeps the state from before the first change
    return true;
  }

  enum Kind { Opacity = 1 };

private:
  std::function<void()> undo_, redo_;
  int kind_, key_;
  bool pushed_ = false;
};

} // namespace atlascope::app
