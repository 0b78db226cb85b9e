"""Writes the small example datasets in this folder (deterministic: run it again, get the
same bytes). Standard library only.

    python3 examples/data/make_examples.py

* word_problems.jsonl: 72 arithmetic word problems in the shape of GSM8K-style exports
  (`question`, `answer`, `id`, plus `topic` and `difficulty` passed to pieces as metadata);
  answers are integers, fractions (`5/8`) and decimals, so the math verifier's forms matter.
* coding.jsonl: 8 small Python functions with unit tests (`assert` strings, as MBPP stores
  them) and a reference solution.
* writing.jsonl: 12 short writing prompts in chat form (`messages`), with no gold answer and
  an exemplary `reference` response, for rubric judges.
"""

import json
import random
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).parent
rng = random.Random(14)
NAMES = ["Maya", "Tom", "Aiko", "Ravi", "Lena", "Omar", "Sofia", "Jonas", "Priya", "Mateo", "Zoe", "Kofi"]
ITEMS = ["apples", "marbles", "stickers", "books", "shells", "coins"]


def add_problem():
    n, item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b = rng.randint(3, 60), rng.randint(2, 40)
    return f"{n} has {a} {item} and gets {b} more. How many {item} does {n} have now?", str(a + b), "addition", 1


def sub_problem():
    n, item = rng.choice(NAMES), rng.choice(ITEMS)
    a = rng.randint(20, 90)
    b = rng.randint(2, a - 1)
    return f"{n} had {a} {item} and gave away {b}. How many {item} are left?", str(a - b), "subtraction", 1


def mul_problem():
    n, item = rng.choice(NAMES), rng.choice(ITEMS)
    boxes, per = rng.randint(3, 12), rng.randint(4, 15)
    return (
        f"{n} fills {boxes} boxes with {per} {item} each. How many {item} is that in total?",
        str(boxes * per),
        "multiplication",
        2,
    )


def fraction_problem():
    n = rng.choice(NAMES)
    slices = rng.choice([6, 8, 10, 12])
    eaten = rng.randint(1, slices - 1)
    left = Fraction(slices - eaten, slices)
    return (
        f"A pizza is cut into {slices} equal slices and {n} eats {eaten} of them. "
        "What fraction of the pizza is left? Give the fraction in lowest terms.",
        f"{left.numerator}/{left.denominator}",
        "fractions",
        3,
    )


def money_problem():
    n = rng.choice(NAMES)
    price_cents = rng.choice([125, 250, 175, 320, 95, 460])
    count = rng.randint(2, 9)
    total = Fraction(price_cents * count, 100)
    text = f"{total.numerator / total.denominator:.2f}".rstrip("0").rstrip(".")
    return (
        f"A notebook costs ${price_cents / 100:.2f}. {n} buys {count} notebooks. How many dollars does {n} spend?",
        text,
        "money",
        3,
    )


def speed_problem():
    speed, hours = rng.randint(30, 90), rng.randint(2, 6)
    return (
        f"A train travels at {speed} km per hour for {hours} hours. How many kilometres does it travel?",
        str(speed * hours),
        "rates",
        2,
    )


MAKERS = [add_problem, sub_problem, mul_problem, fraction_problem, money_problem, speed_problem]

with open(HERE / "word_problems.jsonl", "w", encoding="utf-8", newline="\n") as f:
    seen = set()
    i = 0
    while i < 72:
        question, answer, topic, difficulty = MAKERS[i % len(MAKERS)]()
        if question in seen:
            continue
        seen.add(question)
        row = {"id": f"wp{i:03d}", "question": question, "answer": answer, "topic": topic, "difficulty": difficulty}
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
        i += 1

CODING = [
    ("add", "Write a function `add(a, b)` that returns the sum of two numbers.",
     "def add(a, b):\n    return a + b\n",
     ["assert add(1, 2) == 3", "assert add(-4, 4) == 0", "assert add(2.5, 0.5) == 3.0"]),
    ("is_prime", "Write a function `is_prime(n)` that returns True when the integer n is prime.",
     "def is_prime(n):\n    if n < 2:\n        return False\n    d = 2\n    while d * d <= n:\n        if n % d == 0:\n            return False\n        d += 1\n    return True\n",
     ["assert is_prime(2)", "assert is_prime(97)", "assert not is_prime(1)", "assert not is_prime(91)"]),
    ("reverse_words", "Write a function `reverse_words(s)` that returns the words of s in reverse order, separated by single spaces.",
     "def reverse_words(s):\n    return ' '.join(reversed(s.split()))\n",
     ["assert reverse_words('a b c') == 'c b a'", "assert reverse_words('  hello   world ') == 'world hello'", "assert reverse_words('') == ''"]),
    ("fizzbuzz", "Write a function `fizzbuzz(n)` that returns 'Fizz' for multiples of 3, 'Buzz' for multiples of 5, 'FizzBuzz' for both, and str(n) otherwise.",
     "def fizzbuzz(n):\n    if n % 15 == 0:\n        return 'FizzBuzz'\n    if n % 3 == 0:\n        return 'Fizz'\n    if n % 5 == 0:\n        return 'Buzz'\n    return str(n)\n",
     ["assert fizzbuzz(3) == 'Fizz'", "assert fizzbuzz(10) == 'Buzz'", "assert fizzbuzz(30) == 'FizzBuzz'", "assert fizzbuzz(7) == '7'"]),
    ("count_vowels", "Write a function `count_vowels(s)` that counts the vowels (a, e, i, o, u, either case) in s.",
     "def count_vowels(s):\n    return sum(c in 'aeiouAEIOU' for c in s)\n",
     ["assert count_vowels('Hello') == 2", "assert count_vowels('xyz') == 0", "assert count_vowels('AEIOU') == 5"]),
    ("second_largest", "Write a function `second_largest(xs)` that returns the second largest distinct value of a list of integers, or None if there is none.",
     "def second_largest(xs):\n    d = sorted(set(xs))\n    return d[-2] if len(d) >= 2 else None\n",
     ["assert second_largest([3, 1, 4, 1, 5]) == 4", "assert second_largest([2, 2]) is None", "assert second_largest([-1, -7]) == -7"]),
    ("run_length", "Write a function `run_length(s)` that encodes s as runs: 'aaab' becomes 'a3b1'.",
     "def run_length(s):\n    out = []\n    i = 0\n    while i < len(s):\n        j = i\n        while j < len(s) and s[j] == s[i]:\n            j += 1\n        out.append(s[i] + str(j - i))\n        i = j\n    return ''.join(out)\n",
     ["assert run_length('aaab') == 'a3b1'", "assert run_length('') == ''", "assert run_length('abc') == 'a1b1c1'"]),
    ("digit_sum", "Write a function `digit_sum(n)` that returns the sum of the decimal digits of the non-negative integer n.",
     "def digit_sum(n):\n    return sum(int(c) for c in str(n))\n",
     ["assert digit_sum(0) == 0", "assert digit_sum(1234) == 10", "assert digit_sum(99999) == 45"]),
]

with open(HERE / "coding.jsonl", "w", encoding="utf-8", newline="\n") as f:
    for name, prompt, solution, tests in CODING:
        prompt += " Reply with the code in one ```python fenced block."
        row = {"task_id": name, "prompt": prompt, "tests": tests, "solution": solution, "entry_point": name}
        f.write(json.dumps(row, ensure_ascii=False) + "\n")

WRITING = [
    ("thanks", "Write a two-sentence thank-you note to a neighbour who watered your plants while you were away.",
     "Thank you so much for watering my plants while I was away; they look happier than when I left. Please let me return the favour whenever you travel."),
    ("apology", "Write a short apology to a colleague for missing a meeting this morning.",
     "I am sorry I missed this morning's meeting; I misread the time in my calendar. Could you tell me what I missed, and may I join the follow-up?"),
    ("product", "Describe a reusable water bottle in three sentences for an online shop.",
     "This 750 ml steel bottle keeps drinks cold for 24 hours and hot for 12. It fits in bike cages and car cup holders. The leak-proof lid comes apart for cleaning."),
    ("summary", "Summarise in one sentence why regular sleep matters for learning.",
     "Regular sleep lets the brain consolidate what it learned during the day, so memories last and new material is easier to take in."),
    ("directions", "Explain to a visitor how to get from the station to the library: straight for two blocks, left at the bakery, library on the right.",
     "Leave the station and walk straight ahead for two blocks. Turn left at the bakery, and the library is a short walk on your right."),
    ("invite", "Write a friendly two-sentence invitation to a Saturday picnic in the park.",
     "Join us for a picnic in the park this Saturday at noon. Bring a blanket and something to share, and we will bring the lemonade."),
    ("complaint", "Write a polite message to a landlord about a dripping kitchen tap.",
     "Hello, the kitchen tap has been dripping steadily for a week, even when fully closed. Could someone come to look at it this week? Thank you."),
    ("advice", "Give one practical tip for someone starting to learn a musical instrument.",
     "Practise for fifteen minutes every day rather than for two hours once a week: short, regular sessions build skill faster."),
    ("weather", "Write a one-sentence weather report for a sunny, windy spring day.",
     "Expect bright sunshine all day with strong westerly winds, gusting up to 50 km/h in the afternoon."),
    ("recipe", "Explain in two sentences how to make a cup of tea with a tea bag.",
     "Pour freshly boiled water over a tea bag in a mug and let it steep for three to five minutes. Remove the bag and add milk or sugar to taste."),
    ("reminder", "Write a short reminder for a team that reports are due on Friday.",
     "A quick reminder that the monthly reports are due this Friday by 5 pm. Send them to me or upload them to the shared folder."),
    ("welcome", "Write a two-sentence welcome message for a new member of a book club.",
     "Welcome to the book club; we are glad you joined us. We meet on the first Tuesday of each month, and this month we are reading a short mystery."),
]

with open(HERE / "writing.jsonl", "w", encoding="utf-8", newline="\n") as f:
    for name, prompt, reference in WRITING:
        row = {"id": name, "messages": [{"role": "user", "content": prompt}], "reference": reference}
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
