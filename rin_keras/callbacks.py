"""Keras callbacks of the training loop: dev-set scoring, progress lines in logs, and model selection that survives
interruptions.

BackupAndRestore brings back the weights, optimizer and epoch of an interrupted run, but
not the state of the other callbacks. Those read it back from history.csv instead: the
best dev score so far (ModelCheckpoint's threshold) and the epochs since it
(EarlyStopping, ReduceLROnPlateau).
"""

from __future__ import annotations

import csv
import json
import os
import time

import keras
from absl import logging

from rin_keras.files import InterruptsHeld, write_atomically


class EpochEndWrites:
    """Holds Ctrl-C back from the first to the last callback that writes at an epoch's end (best.keras,
    history.csv, the backup), so that a stop lands before all of them or after all of them, never between: a
    best.keras or a backup that history.csv does not know of would resume into an epoch trained twice or a best
    epoch misreported. `first` goes before those callbacks, `last` after them; `release()` (in a `finally` around
    `fit`) gives Ctrl-C back where an error ends the epoch between them."""

    def __init__(self):
        self._held = InterruptsHeld()
        self.first = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: self._held.hold())
        self.last = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: self._held.release())

    def release(self) -> None:
        self._held.release()


class DevEvaluation(keras.callbacks.Callback):
    """Scores the dev split after every epoch.

    Adds `val_{partial,exact}_{precision,recall,f1}` to the logs, and
    `epoch_seconds`, the epoch's wall time with its dev scoring, so that
    history.csv times a run across interruptions.

    Args:
        evaluate: maps the model to the dev split's scores (`rin_keras.evaluate.evaluate_split`).
        variant: `"partial"` or `"exact"`, the score that selects the model: printed first.
    """

    def __init__(self, evaluate, variant: str = "partial"):
        super().__init__()
        self._evaluate = evaluate
        self._variant = variant
        self._epoch_start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        start = time.time()
        scores = self._evaluate(self.model)
        for name in ("partial", "exact"):
            for measure in ("precision", "recall", "f1"):
                logs[f"val_{name}_{measure}"] = scores[name][measure]
        logs["epoch_seconds"] = time.time() - self._epoch_start
        main, other = scores[self._variant], "exact" if self._variant == "partial" else "partial"
        print(
            f"\nepoch {epoch + 1}: dev {self._variant} P {main['precision']:.2f} R {main['recall']:.2f} "
            f"F1 {main['f1']:.2f} ({other} F1 {scores[other]['f1']:.2f}; {time.time() - start:.1f}s)",
            flush=True,
        )


class BackupError(Exception):
    """A training folder's saved state (`backup/`, `best.keras`) that cannot be restored."""


class RunBackup(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` that outlives `fit` and reports a backup it cannot restore in one line.

    `RINModel.save_weights` renames each backup into place when whole, and the epoch it ends
    (`training_metadata.json`) follows it the same way, so an interruption leaves the last one (a stop between the
    two renames, microseconds apart, trains that epoch once more); a backup damaged otherwise (a full disk, another program) would end in Keras's traceback of variable counts
    (`BackupError`). When `fit` ends (its last epoch, or early stopping) the backup stays, marked as ended
    (`training_ended`): the run is not over until its dev and test scores are written, and the caller removes the
    folder then. A run stopped while it scores is finished by the same command, without training again.
    """

    ENDED_MARKER = "training_ended"
    METADATA_FILE = "training_metadata.json"  # Keras's: {"epoch": epochs done, "batch": ...}.

    def __init__(self, backup_dir: str, num_workers: int = 1):
        super().__init__(backup_dir, delete_checkpoint=False)
        self.num_workers = num_workers

    @classmethod
    def saved_epoch(cls, backup_dir: str) -> int:
        """The epochs done by the run backed up in `backup_dir` (0 without a backup): the epoch it resumes at.

        Raises:
            BackupError: the backup's epoch cannot be read.
        """
        path = os.path.join(backup_dir, cls.METADATA_FILE)
        if not os.path.exists(path):
            return 0
        try:
            with open(path, encoding="utf-8") as f:
                return int(json.load(f)["epoch"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise BackupError(f"{path} cannot be read ({error}); delete {backup_dir} to train this run from its "
                              "first epoch.") from error

    def _save_model(self):
        # Keras's writes the epoch in place after the weights: a stop there left a backup that could not resume.
        os.makedirs(self.backup_dir, exist_ok=True)
        self.model.save_weights(filepath=self._weights_path, overwrite=True)
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen}

        def write(path):
            with open(path, "w", encoding="utf-8") as f:
                json.dump(metadata, f)

        write_atomically(self._training_metadata_path, write)

    @classmethod
    def training_ended(cls, backup_dir: str) -> bool:
        """Whether the run backed up in `backup_dir` trained to its end (the scores may still be missing)."""
        return os.path.exists(os.path.join(backup_dir, cls.ENDED_MARKER))

    def on_train_end(self, logs=None):
        # Not called when fit is interrupted: an exception leaves the training loop before it.
        os.makedirs(self.backup_dir, exist_ok=True)
        with open(os.path.join(self.backup_dir, self.ENDED_MARKER), "w", encoding="utf-8"):
            pass

    def on_train_begin(self, logs=None):
        try:
            super().on_train_begin(logs)
        except (OSError, ValueError, KeyError) as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            if self.num_workers > 1:  # The workers restore it together: one that differs fails them all.
                raise BackupError(
                    f"the {self.num_workers} workers could not restore {self.backup_dir} together ({reason}): check "
                    "that every worker runs the same command with the same --model_dir, a folder all of them see; "
                    "only if they do, delete that folder to train this run from its first epoch.") from error
            raise BackupError(f"{self.backup_dir} cannot be restored ({reason}); delete that folder to train this "
                              "run from its first epoch.") from error


class ProgressLog(keras.callbacks.Callback):
    """Logs a line every `every_seconds` of an epoch: steps done, steps/s, the loss, and time left.

    Keras's one line an epoch (`verbose=2`, used where the output is no terminal) says nothing for the many minutes
    of a long epoch. Where Keras does not know an epoch's steps (a dataset of unknown length), they are known once an
    epoch has ended, so the first epoch's lines carry no time left.
    """

    def __init__(self, every_seconds: float = 60.0):
        super().__init__()
        self._every_seconds = every_seconds
        self._epoch_steps = None  # Steps of the last complete epoch.

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._steps = 0
        self._start = self._last_line = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        now = time.monotonic()
        if now - self._last_line < self._every_seconds:
            return
        self._last_line = now
        rate = self._steps / (now - self._start)
        total = self.params.get("steps") or self._epoch_steps
        done = f"step {self._steps}" + (f"/{total}" if total else "")
        left = f", {max(total - self._steps, 0) / rate / 60:.1f} min left in the epoch" if total else ""
        loss = f", loss {float(logs['loss']):.4f}" if logs and "loss" in logs else ""
        logging.info("epoch %d/%d: %s, %.2f steps/s%s%s", self._epoch + 1, self.params.get("epochs", 0), done, rate,
                     loss, left)

    def on_epoch_end(self, epoch, logs=None):
        self._epoch_steps = self._steps


class HistoryLogger(keras.callbacks.CSVLogger):
    """CSVLogger that can append to an interrupted run's history.csv when the rerun logs other columns.

    A rerun that adds a flag (e.g. --lr_decay_factor, which logs `learning_rate`) would otherwise write rows that
    no longer match the file's header; the file is rewritten once (renamed into place) with the union of the columns
    instead. A row that a stop left unfinished is removed before the rerun appends.
    """

    def on_train_begin(self, logs=None):
        if self.append and os.path.exists(self.filename):
            with open(self.filename, "rb+") as f:
                content = f.read()
                if content and not content.endswith(b"\n"):
                    f.truncate(content.rfind(b"\n") + 1)
        super().on_train_begin(logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.keys is None and self.append and not self.append_header:
            self.keys = self._merge_columns(sorted(logs or {}))
        super().on_epoch_end(epoch, logs)

    def _merge_columns(self, keys: list[str]) -> list[str]:
        with open(self.filename, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            logged = [name for name in reader.fieldnames if name != "epoch"]
        merged = sorted(set(logged) | set(keys))
        if merged != logged:
            self.csv_file.close()

            def write(path):
                with open(path, "w", encoding="utf-8", newline="") as f:
                    writer = csv.DictWriter(f, ["epoch"] + merged, restval="")
                    writer.writeheader()
                    writer.writerows(rows)

            write_atomically(self.filename, write)
            self.csv_file = open(self.filename, "a", encoding="utf-8", newline="")
        return merged


def history_rows(history_csv: str, monitor: str) -> list[dict]:
    """The rows of history.csv, one per epoch in epoch order.

    An epoch is logged twice when a run stopped after logging it and before backing it up: the rerun trains it again.
    Of its rows, the one with the higher `monitor` score (the first of equals) stands: `ModelCheckpoint` compared
    the rerun's score with the first row's, so `best.keras` holds the better of the two, and model selection,
    `best_epoch` and the scores of `best.keras` agree.
    """
    if not os.path.exists(history_csv):
        return []
    by_epoch = {}
    with open(history_csv, encoding="utf-8") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            try:
                epoch, score = int(row["epoch"]), float(row[monitor])
            except (KeyError, TypeError, ValueError):  # A row a stop cut short.
                logging.warning("%s:%d: no epoch and %s; left out.", history_csv, line, monitor)
                continue
            if epoch not in by_epoch or score > float(by_epoch[epoch][monitor]):
                by_epoch[epoch] = row
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def dev_scores_so_far(history_csv: str, monitor: str, before_epoch: int | None = None) -> list[float]:
    """The selecting dev score of every epoch history.csv logged (`history_rows`), or of those before
    `before_epoch` (0-based)."""
    return [float(r[monitor]) for r in history_rows(history_csv, monitor)
            if before_epoch is None or int(r["epoch"]) < before_epoch]


def replay_plateau(scores: list[float], reset_after: int | None = None) -> tuple[float | None, int]:
    """Replays Keras's plateau counting (mode max, min_delta 0) over past dev scores.

    Args:
        scores: the dev score of each past epoch.
        reset_after: ReduceLROnPlateau's patience: the count restarts after each decay. None for EarlyStopping.

    Returns:
        The best score (None without scores) and the epochs counted since.
    """
    best, wait = None, 0
    for score in scores:
        if best is None or score > best:
            best, wait = score, 0
        else:
            wait += 1
            if reset_after is not None and wait >= reset_after:
                wait = 0
    return best, wait


class _ResumesCounting:
    """Mixin for Keras plateau callbacks: a resumed run goes on counting from the epochs it logged before."""

    restarts_after_patience = False  # True where reaching the patience acts and restarts the count.

    def __init__(self, past_scores: list[float], **kwargs):
        super().__init__(**kwargs)
        self._past_scores = past_scores

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        reset_after = self.patience if self.restarts_after_patience else None
        self.best, self.wait = replay_plateau(self._past_scores, reset_after)


def cosine_learning_rate(learning_rate: float, epochs: int, final_fraction: float) -> keras.callbacks.Callback:
    """Sets each epoch's learning rate on a half cosine, from `learning_rate` down to its `final_fraction` at the last.

    The rate is a function of the epoch index alone, so a resumed run (BackupAndRestore restores the epoch) goes on
    along the same curve. Logs `learning_rate` after each epoch.
    """
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(epochs - 1, 1), alpha=final_fraction)
    return keras.callbacks.LearningRateScheduler(lambda epoch: float(schedule(epoch)))


class ResumedLearningRate(keras.callbacks.Callback):
    """Sets a constant learning rate after `RunBackup` restored the optimizer, whose backup holds the rate of the run
    it resumes: a rerun may ask another (`--learning_rate`). Goes after `RunBackup` in the callback list.

    A cosine schedule sets the rate each epoch itself; plateau decay goes on from the rate the run had reached.
    """

    def __init__(self, learning_rate: float):
        super().__init__()
        self.learning_rate = learning_rate

    def on_train_begin(self, logs=None):
        self.model.optimizer.learning_rate = self.learning_rate


class ResumedEarlyStopping(_ResumesCounting, keras.callbacks.EarlyStopping):
    """EarlyStopping whose patience spans interruptions."""


class ResumedReduceLROnPlateau(_ResumesCounting, keras.callbacks.ReduceLROnPlateau):
    """ReduceLROnPlateau whose patience spans interruptions."""

    restarts_after_patience = True
