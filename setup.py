"""midm-recipes: training recipes reproducing Mi:dm 2.0 on Megatron-Core.

Versions are pinned once, in requirements/constraints.txt (``make`` installs with ``-c``);
the ranges here only state what the code is written against.
"""
from setuptools import find_packages, setup

CORE = ["torch==2.13.0", "megatron-core>=0.19,<0.20", "psutil>=5.9", "pyyaml>=6", "numpy>=1.26", "tqdm>=4.66",
        "xxhash>=3.4",  # checkpoint manifests (XXH3-128, ~10x BLAKE2b)
        "tensorboard>=2.16"]
EXTRAS = {
    # Transformer Engine: only on CUDA machines (NGC containers ship it). Never installed in CI:
    # once importable, Megatron-Core switches to TE modules that refuse to run without CUDA.
    "gpu": ["transformer-engine[pytorch]>=2.0"],
    # `midm data …`: the filter stages, and `data tokenize` (gigatoken encodes, awkward holds its
    # batches, tokenizers is the reference encoder it is checked against, orjson parses records);
    # web inputs: warcio reads WARC, resiliparse extracts HTML main text and detects charsets,
    # pyarrow reads Parquet, datasets reads Hub datasets (benchmarks/data_extractors.py: why resiliparse)
    "data": ["datatrove[io,processing]>=0.10,<0.11", "kiwipiepy>=0.24", "ftfy>=6.3", "py3langid>=0.3",
             "fasttext-numpy2-wheel>=0.9.2", "pyahocorasick>=2.0", "tldextract>=5.0", "orjson>=3.10",
             "gigatoken>=0.10", "awkward>=2.6", "tokenizers>=0.21",
             "warcio>=1.7", "resiliparse>=2.0", "pyarrow>=15", "datasets>=3.1"],
    # benchmarks/data_extractors.py: trafilatura, the extractor FineWeb used, compared with ours
    "bench-extract": ["trafilatura>=1.8,<1.12"],
    "tokenizer": ["sentencepiece>=0.2", "protobuf>=4", "tokenizers>=0.21", "transformers>=5.0", "mistral-common>=1.13",
                  "matplotlib>=3.8", "kiwipiepy>=0.24", "orjson>=3.10"],
    # lm-eval[ifeval] brings IFEval's checkers' deps (langdetect, immutabledict, nltk); kiwipiepy splits
    # Korean sentences for Ko-IFEval; langdetect also finds non-Korean answers for KoMT-Bench.
    "eval": ["lm-eval[hf,ifeval]>=0.4.13,<0.5", "transformers>=5.0", "safetensors>=0.4", "huggingface-hub>=0.24",
             "tokenizers>=0.21", "matplotlib>=3.8", "kiwipiepy>=0.24", "langdetect>=1.0.9"],
    # `midm eval --backend vllm`: CUDA only, pins its own torch; never in `all` (CI, CPU machines).
    "vllm": ["lm-eval[vllm]>=0.4.13,<0.5"],
    # `midm convert to-hf|from-hf`
    "convert": ["transformers>=5.0", "safetensors>=0.4", "huggingface-hub>=0.24"],
    "prune": ["nvidia-modelopt==0.43.0"],
    # `midm demo`: report figures and HTML (Python-Markdown), and `--data <Hub dataset id>`
    "demo": ["matplotlib>=3.8", "markdown>=3.5", "datasets>=3.0"],
    # logging.wandb_project: Weights & Biases beside TensorBoard/JSONL (imported only when it is set)
    "wandb": ["wandb>=0.19"],
    "dev": ["pytest>=8", "pytest-timeout>=2.3", "pytest-xdist>=3.5", "dill>=0.3.8"],
}
EXTRAS["all"] = sorted({dep for name, deps in EXTRAS.items() if name not in ("gpu", "vllm") for dep in deps})

setup(
    name="midm-recipes",
    version="0.1.0",
    description="Megatron-Core training recipes for the Mi:dm 2.0 Korean-English LLM family",
    python_requires=">=3.12",
    packages=find_packages(include=["midm*", "recipes*", "megatron_ext*", "tokenizer*", "data_prep*",
                                    "evaluation*", "slurm*"]),
    package_data={"slurm": ["templates/*"], "evaluation": ["tasks/*", "tasks/**/*", "paper/*", "judge/prompts/*"], "data_prep": ["configs/*", "configs/**/*", "models/*"]},
    install_requires=CORE,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["midm=midm.cli:main"]},
)
