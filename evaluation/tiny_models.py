"""Tiny Hugging Face Llama models for offline smoke runs of ``midm eval`` (tests, benchmarks/).

:func:`build_tiny_llama` writes a randomly initialised ``LlamaForCausalLM`` with a byte-level BPE
tokenizer trained on the given texts; ``chat=True`` adds a Llama-3-style chat template (the
format of Mi:dm's ``-inst`` models: ``<|start_header_id|>role<|end_header_id|>\\n\\n…<|eot_id|>``),
which makes ``midm eval`` treat it as an instruct model. :func:`train_replies` overfits such a
model on a few (chat → reply) pairs, e.g. to make a tiny local judge that answers in a judge
format — a real model generating real text, small enough to train in seconds on a CPU.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

SPECIALS = ["<|begin_of_text|>", "<pad>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
            "<|eot_id|>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")


def build_tiny_llama(out: Path, texts: Iterable[str], *, vocab: int = 400, chat: bool = False, seed: int = 0,
                     hidden: int = 32, layers: int = 2, init_std: float = 0.3, max_positions: int = 1024) -> Path:
    """Write tokenizer + random Llama (hidden ``hidden``, ``layers`` layers, 4 heads / 2 KV groups) to ``out``.

    ``init_std`` > 0.02 spreads the logits so that multiple-choice options get distinct scores.
    With ``chat=True`` the end-of-turn token ``<|eot_id|>`` is the EOS token.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = SPECIALS if chat else SPECIALS[:3]
    tok.train_from_iterator(list(texts), trainers.BpeTrainer(
        vocab_size=vocab, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=specials[0], pad_token=specials[1],
                                     eos_token="<|eot_id|>" if chat else specials[2])
    if chat:
        hf_tok.chat_template = CHAT_TEMPLATE
    hf_tok.save_pretrained(out)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(hf_tok), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         head_dim=hidden // 4, max_position_embeddings=max_positions, bos_token_id=0,
                         pad_token_id=1, eos_token_id=hf_tok.eos_token_id, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, init_std)
    model.save_pretrained(out)
    return out


def train_replies(model_dir: Path, examples: list[tuple[list[dict[str, str]], str]], *, steps: int = 200,
                  lr: float = 3e-3, seed: int = 0) -> float:
    """Fine-tune the chat model in ``model_dir`` (in place) to answer each chat with its reply.

    Loss only on the reply tokens + ``<|eot_id|>``; AdamW, one example per step, in order.
    Returns the last loss (nats per reply token).
    """
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = LlamaForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    model.train()
    torch.manual_seed(seed)
    batches = []
    for messages, reply in examples:
        prompt = tok.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"]
        target = tok(reply, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        ids = torch.tensor([prompt + target])
        labels = torch.tensor([[-100] * len(prompt) + target])
        batches.append((ids, labels))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    loss = torch.tensor(float("nan"))
    for step in range(steps):
        ids, labels = batches[step % len(batches)]
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    model.save_pretrained(model_dir)
    return float(loss.detach())


# What the tiny judge learns to answer to every judge prompt: both formats at once (LogicKor reads
# "점수: 8", FastChat/KoMT-Bench reads "[[8]]"). It learns the format, not how to judge; greedy
# decoding reproduces it on most prompts and garbles it on some (measured: 12 of 16 prompt kinds),
# which exercises the unparseable path as a real small judge does.
TINY_JUDGE_REPLY = "평가: 좋다.\n점수: 8 [[8]]"


def build_tiny_judge(out: Path, *, steps: int = 150, seed: int = 0) -> Path:
    """A tiny chat Llama (2 layers, hidden 64, 4096 positions) trained to reply
    :data:`TINY_JUDGE_REPLY` to the published judge prompts of LogicKor and KoMT-Bench, filled with
    random questions, references and answers of random length. ~10 s on one idle CPU thread."""
    import random

    from evaluation.judge.benchmarks import KoMTBench, LogicKor, Question

    logickor, komt = LogicKor(), KoMTBench()
    rng = random.Random(seed)

    def junk(n: int) -> str:
        return "".join(rng.choice("가나다라마바사 아자차카타파하 한국어 답변 abc 123") for _ in range(n))

    texts = [logickor.prompts["system"][k] for k in ("single_turn", "multi_turn")]
    texts += [p["system_prompt"] + p["prompt_template"] for p in komt.prompts.values()]
    examples = []
    for i in range(12):
        q = Question(str(i), ("writing", "math")[i % 2], (junk(rng.randint(2, 60)), junk(rng.randint(2, 40))),
                     (junk(20), junk(20)))
        for bench in (logickor, komt):
            for request in bench.judge_requests(q, (junk(rng.randint(1, 100)), junk(rng.randint(1, 100)))):
                examples.append((request.messages, TINY_JUDGE_REPLY))
    rng.shuffle(examples)
    build_tiny_llama(out, texts * 5 + [junk(200) for _ in range(5)], vocab=6000, chat=True, hidden=64,
                     max_positions=4096, seed=seed)
    train_replies(out, examples, steps=steps, lr=5e-3, seed=seed)
    return out
