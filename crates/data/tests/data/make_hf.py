"""Regenerates the Hugging Face `datasets` exports in this folder.

    python3 -m venv /tmp/hfvenv && /tmp/hfvenv/bin/pip install datasets==5.2.0
    cd crates/data/tests/data && /tmp/hfvenv/bin/python make_hf.py

Every file is written by `datasets` itself (`Dataset.to_json` with its defaults: JSON lines;
`Dataset.to_parquet` with its defaults: snappy, row groups of `batch_size` rows), so the tests
read exactly what a user's export looks like. `batch_size=2` makes the Parquet files hold
several row groups while staying a few KB.
"""

from datasets import Dataset

math = Dataset.from_list(
    [
        {"id": "m1", "question": "What is 17 + 25?", "answer": {"value": "42", "numeric": 42.0}, "level": 1, "tags": ["add"]},
        {"id": "m2", "question": "Half of 9?", "answer": {"value": "4.5", "numeric": 4.5}, "level": 2, "tags": ["div", "frac"]},
        {"id": "m3", "question": "Combien font 3 × 3 ? « neuf »", "answer": {"value": "9", "numeric": 9.0}, "level": 1, "tags": []},
        {"id": "m4", "question": "Is 7 prime?", "answer": {"value": "yes", "numeric": None}, "level": None, "tags": ["prime"]},
        {"id": "m5", "question": "2^10?", "answer": {"value": "1024", "numeric": 1024.0}, "level": 3, "tags": ["pow"]},
    ]
)
math.to_json("hf_math.jsonl")
math.to_parquet("hf_math.parquet", batch_size=2)

chat = Dataset.from_list(
    [
        {"messages": [{"role": "system", "content": "Answer with a letter."}, {"role": "user", "content": "2+2? (A) 3 (B) 4"}], "gold": "B", "source": "mc"},
        {"messages": [{"role": "user", "content": "Capital of France?"}], "gold": "Paris", "source": "geo"},
        {"messages": [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "hi"}, {"role": "user", "content": "Again, louder"}], "gold": "HI", "source": "chat"},
    ]
)
chat.to_json("hf_chat.jsonl")
chat.to_parquet("hf_chat.parquet", batch_size=2)

code = Dataset.from_list(
    [
        {"task_id": 11, "prompt": "Write add(a, b).", "tests": ["assert add(1, 2) == 3", "assert add(0, 0) == 0"], "entry_point": "add"},
        {"task_id": 12, "prompt": "Write neg(x).", "tests": ["assert neg(1) == -1"], "entry_point": "neg"},
    ]
)
code.to_json("hf_code.jsonl")
code.to_parquet("hf_code.parquet")

pool = Dataset.from_list(
    [
        {
            "id": "p1",
            "prompt": "What is 6 * 7?",
            "gold": "42",
            "candidates": [
                {"text": "42", "logit": -0.5, "gold": 1.0, "scores": {"rm": 0.9, "len": 0.1}},
                {"text": "48", "logit": -1.25, "gold": 0.0, "scores": {"rm": 0.2, "len": 0.1}},
            ],
        },
        {
            "id": "p2",
            "prompt": "Name a prime.",
            "gold": None,
            "candidates": [{"text": "7", "logit": None, "gold": None, "scores": {"rm": 0.7, "len": None}}],
        },
    ]
)
pool.to_json("hf_pool.jsonl")
pool.to_parquet("hf_pool.parquet")
