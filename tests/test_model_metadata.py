"""Per-checkpoint metadata in a zoo's model records (G.pt's losses): written, verified, read
back, shown to methods; and zoos without it keep their manifest bytes."""

import json

import pytest
import torch

import wmplat
from wmplat.schema import ZooManifest
from wmplat.testing import SpecTask, method_view, tiny_zoo
from wmplat.zoo.format import load_zoo, manifest_json


class LossTask(SpecTask):
    """The kit's classifier, recording a made-up loss (the mean square weight) and its
    negation for any weights."""

    name = "loss-task"

    def model_metadata(self, weights):
        loss = weights.pow(2).mean(dim=1)
        return {"avg_test_loss": loss, "minus_loss": -loss}


def test_a_task_with_model_metadata_records_it_and_methods_read_it(tmp_path):
    task = LossTask()
    zoo = tiny_zoo(task, tmp_path / "zoo")
    records = json.loads((tmp_path / "zoo" / "manifest.json").read_text())["models"]
    expected = task.model_metadata(zoo.train_weights())["avg_test_loss"]
    view = method_view(zoo)
    seen = [m.metadata["avg_test_loss"] for m in view.train_models()]
    assert seen == pytest.approx(expected.tolist(), rel=0, abs=0)
    assert all(set(r["metadata"]) == {"avg_test_loss", "minus_loss"} for r in records)
    asked = view.task.model_metadata(view.train_weights()[:2])
    assert torch.equal(asked["minus_loss"], -expected[:2])


def test_a_zoo_without_metadata_keeps_its_manifest_bytes(default_zoo):
    text = (default_zoo / "manifest.json").read_text(encoding="utf-8")
    assert "metadata" not in text
    assert manifest_json(ZooManifest.model_validate_json(text)) == text


@pytest.mark.parametrize("value, problem", [
    ("NaN", "metadata['avg_test_loss'] must be a finite number, got nan"),
    ("Infinity", "metadata['avg_test_loss'] must be a finite number, got inf"),
])
def test_a_non_finite_metadata_value_is_refused_naming_the_record(tmp_path, value, problem):
    tiny_zoo(LossTask(), tmp_path / "zoo")
    path = tmp_path / "zoo" / "manifest.json"
    text = path.read_text()
    first = json.loads(text)["models"][0]["metadata"]["avg_test_loss"]
    path.write_text(text.replace(json.dumps(first), value, 1))
    with pytest.raises(wmplat.ZooError) as caught:
        load_zoo(tmp_path / "zoo", LossTask())
    assert "models.0" in str(caught.value) and problem in str(caught.value)
    assert "run000-step1" in str(caught.value)


def test_a_metadata_name_must_have_one_to_64_characters(tmp_path):
    tiny_zoo(LossTask(), tmp_path / "zoo")
    path = tmp_path / "zoo" / "manifest.json"
    path.write_text(path.read_text().replace('"minus_loss"', '"' + "x" * 65 + '"', 1))
    with pytest.raises(wmplat.ZooError, match="metadata names must have 1 to 64 characters"):
        load_zoo(tmp_path / "zoo", LossTask())
