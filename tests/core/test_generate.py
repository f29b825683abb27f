"""The one generation routine: greedy, stops at end-of-text or max_new_tokens, the same text in a
batch as alone and as transformers' pipeline writes it with the same settings."""

from __future__ import annotations

import pytest

from kdstudio.core.generate import format_prompt, generate_all, generation_settings


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    from fakes.tiny_models import save_tiny_causal_lm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = save_tiny_causal_lm(tmp_path_factory.mktemp("lm"))
    return AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder), folder


PROMPTS = ["name[Alimentum], food[Chinese]", "name[Cotto]", "name[Zizzi], food[French], area[riverside]"]


def test_greedy_completions_stop_at_the_limit_and_match_in_a_batch(lm):
    model, tok, _ = lm
    alone = generate_all(model, tok, PROMPTS, max_new_tokens=7)
    batched = generate_all(model, tok, PROMPTS, max_new_tokens=7, batch_size=3)
    assert [c.text for c in alone] == [c.text for c in batched]
    assert all(1 <= c.n_tokens <= 7 and c.mean_logprob <= 0 and c.latency_ms > 0 for c in alone)
    assert {c.stopped for c in alone} <= {"eos", "max_tokens"}
    assert all(c.stopped == "eos" or c.n_tokens == 7 for c in alone)


def test_an_end_of_text_token_ends_the_completion(lm):
    import torch
    from transformers import AutoModelForCausalLM

    _, tok, folder = lm
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    assert tok.eos_token_id == 0
    with torch.no_grad():  # every logit equal: greedy picks id 0, the end-of-text token
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.zero_()
    out = generate_all(model, tok, PROMPTS[:1], max_new_tokens=7)
    assert out[0].stopped == "eos" and out[0].n_tokens == 1 and out[0].text == ""


def test_pipeline_with_the_same_settings_writes_the_same_text(tmp_path):
    from fakes.tiny_models import save_tiny_causal_lm
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    folder = save_tiny_causal_lm(tmp_path / "lm", seed=3)
    model, tok = AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
    ours = generate_all(model, tok, PROMPTS, max_new_tokens=9)
    pipe = pipeline("text-generation", model=str(folder), device="cpu")
    theirs = [pipe(format_prompt(p), return_full_text=False, **generation_settings(tok, 9))[0]["generated_text"]
              for p in PROMPTS]
    assert [c.text for c in ours] == [t.strip() for t in theirs]


def test_a_causal_student_folder_saves_and_loads_as_it_writes(tmp_path, lm):
    from kdstudio.core.students import load_student, save_student

    model, tok, _ = lm
    folder = save_student(model, tok, tmp_path / "best", {"template": "{prompt}\n", "max_new_tokens": 5})
    loaded, loaded_tok, meta = load_student(tmp_path)
    assert meta["arch"] == "causal" and meta["task"] == "generation" and meta["max_new_tokens"] == 5
    assert (folder / "model" / "model.safetensors").is_file()
    before = [c.text for c in generate_all(model, tok, PROMPTS, max_new_tokens=5)]
    assert [c.text for c in generate_all(loaded, loaded_tok, PROMPTS, max_new_tokens=5)] == before
