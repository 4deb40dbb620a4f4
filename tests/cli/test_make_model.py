"""`tegel make-model`: random folders of every shipped family that `tegel generate` and
`transformers` read as the same model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tegel.cli import main
from tegel.errors import TegelError
from tegel.workload.model_config import parse_config
from tegel.workload.random_model import (
    families_shipped,
    from_canonical,
    random_canonical,
    random_config,
    random_folder,
)
from tegel.workload.weights import load_hf_folder, to_canonical

FAMILIES = sorted(families_shipped())


def _hf_greedy(folder: Path, prompt: list[int], steps: int) -> list[int]:
    import torch
    import transformers as T

    model = T.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                                   attn_implementation="eager").eval()
    ids = torch.tensor([prompt])
    out = []
    with torch.no_grad():
        for _ in range(steps):
            nxt = int(model(ids).logits[0, -1].argmax())
            out.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    return out


@pytest.fixture(scope="module", params=FAMILIES)
def made(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A tiny folder made by the command, and transformers' fp32 greedy tokens on it."""
    folder = tmp_path_factory.mktemp(request.param) / "model"
    assert main(["make-model", request.param, str(folder), "--size", "tiny", "--seed", "3"]) == 0
    return folder, _hf_greedy(folder, [1, 2, 3], 4)


@pytest.mark.parametrize(("system", "extra"), [("h100-sxm", []), ("ref-dataflow", []),
                                               ("dgx-h100", ["--tp", "2"])])
def test_generate_on_a_made_model_matches_transformers(made, system: str, extra: list[str],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    folder, expected = made
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    capsys.readouterr()
    assert main(["generate", str(folder), "--on", system, "--prompt-ids", "1,2,3",
                 "--max-new-tokens", "4", "--precision", "fp32", "--json", *extra]) == 0
    assert json.loads(capsys.readouterr().out)["token_ids"] == expected


@pytest.mark.parametrize("family", FAMILIES)
def test_checkpoint_names_round_trip(family: str) -> None:
    cfg = parse_config(random_config(family), "t", "t")
    canonical = random_canonical(cfg, seed=1)
    back = to_canonical(cfg, from_canonical(cfg, canonical))
    assert back.keys() == canonical.keys()
    for k, v in canonical.items():
        np.testing.assert_allclose(back[k], v, rtol=0, atol=1e-6, err_msg=k)


def test_seeded_and_prompt_text_tokenizes(tmp_path: Path, capsys) -> None:
    random_folder("llama", tmp_path / "a", seed=5)
    random_folder("llama", tmp_path / "b", seed=5)
    random_folder("llama", tmp_path / "c", seed=6)
    wa, wb, wc = (load_hf_folder(tmp_path / n)[1] for n in "abc")
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert not np.array_equal(wa["embed.weight"], wc["embed.weight"])
    assert main(["generate", str(tmp_path / "a"), "--on", "h100-sxm", "--prompt", "hello world",
                 "--max-new-tokens", "2"]) == 0
    assert "token_ids:" in capsys.readouterr().out


def test_bad_input_names_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(TegelError, match=r"family 'bert': expected one of .*gemma2.*llama"):
        random_folder("bert", tmp_path / "x")
    with pytest.raises(TegelError, match=r"--size 'huge': expected one of tiny, small"):
        random_folder("llama", tmp_path / "x", size="huge")
    (tmp_path / "f").write_text("")
    with pytest.raises(TegelError, match="expected a folder"):
        random_folder("llama", tmp_path / "f")
