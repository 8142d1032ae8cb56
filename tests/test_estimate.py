"""Tests of the ``estimate`` counter (ctxbudget.tokens.estimate).

Every fixture is written inline here; nothing is read from the shared data folder.
"""

from __future__ import annotations

import json
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctxbudget.tokens.counters import Counter, get_counter
from ctxbudget.tokens.estimate import FEATURES, EstimateCounter, features, load_coefficients

PROSE = """\
When we moved into the old house at the end of the street, the garden was a mess of \
brambles and broken pots. My sister spent the whole first summer clearing it, one \
weekend at a time, and by September she had planted tomatoes, beans and a row of \
sunflowers that grew taller than the fence. Our neighbours, who had watched the place \
fall apart for years, started stopping by with cuttings and advice.

I didn't think much of it back then. It's only now, looking at the photographs, that I \
realise how much work it took, and how patient she was. "You can't rush a garden," she \
told me once, when I complained that nothing was happening. She was right, of course: \
the apple tree we planted that autumn gave its first fruit four years later.
"""

DIALOGUE = """\
Maria: Hey! How was the trip? I saw your photos from the mountains, they looked amazing.
Tom: Thanks! It was incredible, honestly. We hiked for three days and barely saw anyone.
Maria: That sounds so peaceful. Did you manage to get any sleep in the tent?
Tom: Not much the first night, it was freezing. After that we got used to it.
Maria: I'd love to do something like that next summer. Would you go again?
Tom: Definitely. Let's plan it together, I know a few easier trails we could try.
"""

PYTHON_CODE = '''\
import json
from pathlib import Path


class ConfigError(Exception):
    """Raised when a configuration file cannot be read."""


def load_config(path: Path, defaults: dict[str, object] | None = None) -> dict[str, object]:
    """Read a JSON configuration file and merge it over the defaults."""
    config = dict(defaults or {})
    try:
        with path.open(encoding="utf-8") as handle:
            config.update(json.load(handle))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    for key, value in list(config.items()):
        if value is None:
            del config[key]  # a null in the file removes the default
    return config


if __name__ == "__main__":
    print(load_config(Path("settings.json"), {"timeout": 30, "retries": 3}))
'''

JS_CODE = """\
export async function fetchUsers(baseUrl, { limit = 20, offset = 0 } = {}) {
  const response = await fetch(`${baseUrl}/api/users?limit=${limit}&offset=${offset}`);
  if (!response.ok) {
    throw new Error(`request failed with status ${response.status}`);
  }
  const { users, total } = await response.json();
  return users.map((user) => ({ id: user.id, name: user.displayName, total }));
}
"""

JSON_DOC = json.dumps(
    {
        "id": "a3f1c9e2-7b4d-4e8a-9c21-5d6f7e8a9b0c",
        "created_at": "2024-03-18T09:41:27.512Z",
        "model": "example-model-2024-08",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "List the files in the current directory."},
            {
                "role": "assistant",
                "content": "Running `ls -la`:\ntotal 48\ndrwxr-xr-x  6 user staff  192 Mar 18"
                " 09:40 .\n-rw-r--r--  1 user staff 1024 Mar 18 09:12 README.md\n",
            },
        ],
        "usage": {"prompt_tokens": 1532, "completion_tokens": 87, "total_tokens": 1619},
        "settings": {"temperature": 0.2, "top_p": 0.95, "stream": False, "stop": None},
    },
    indent=2,
)

LOG = """\
2024-05-02T14:03:11.204Z INFO  [server.http] listening on 0.0.0.0:8080 (workers=4)
2024-05-02T14:03:12.551Z DEBUG [db.pool] opened connection id=17 host=db-primary latency_ms=3.2
2024-05-02T14:03:15.019Z WARN  [auth.session] token expired for user_id=48213, refreshing
2024-05-02T14:03:15.377Z ERROR [jobs.worker] task 9f2c41d0 failed: TimeoutError after 30s
Traceback (most recent call last):
  File "/srv/app/jobs/worker.py", line 88, in run
    result = task.execute(timeout=self.timeout)
TimeoutError: operation timed out
"""

FIXTURES = {
    "prose": PROSE,
    "dialogue": DIALOGUE,
    "python": PYTHON_CODE,
    "javascript": JS_CODE,
    "json": JSON_DOC,
    "log": LOG,
}

NON_ASCII = {
    "accented": "Le garçon a mangé une crème brûlée au café, près du château de Zürich.",
    "cyrillic": "Сегодня очень хорошая погода, и мы пошли гулять в парк у реки.",
    "chinese": "我们今天下午去公园散步，天气非常好，很多人在湖边钓鱼。",
    "japanese": "今日はとても良い天気ですね。週末は友達と映画を見に行きました。",
    "korean": "오늘은 날씨가 정말 좋네요. 주말에 친구들과 영화를 보러 갔어요.",
    "emoji": "Great job on the launch 🎉🚀 thanks everyone! 🙏 See you tomorrow 👋",
}


@pytest.fixture(scope="module")
def estimate() -> EstimateCounter:
    return EstimateCounter()


@pytest.fixture(scope="module")
def exact() -> Counter:
    return get_counter("o200k_base")


def test_counter_attributes(estimate: EstimateCounter) -> None:
    assert estimate.name == "estimate"
    assert estimate.exact is False
    assert "o200k_base" in estimate.description
    assert isinstance(estimate, Counter)


def test_registry_builds_the_estimator() -> None:
    counter = get_counter("estimate")
    assert isinstance(counter, EstimateCounter)
    assert counter is get_counter("estimate")


def test_empty_text_is_zero_tokens(estimate: EstimateCounter) -> None:
    assert estimate.count("") == 0


@pytest.mark.parametrize("text", [" ", "a", "\n", ".", "7", "中", "🎉", "\t\t"])
def test_any_nonempty_text_is_at_least_one_token(estimate: EstimateCounter, text: str) -> None:
    assert estimate.count(text) >= 1


@pytest.mark.parametrize("kind", sorted(FIXTURES))
def test_within_15_percent_of_o200k(estimate: EstimateCounter, exact: Counter, kind: str) -> None:
    text = FIXTURES[kind]
    truth = exact.count(text)
    assert abs(estimate.count(text) - truth) <= 0.15 * truth


def test_far_better_than_chars_over_4_on_the_whole(
    estimate: EstimateCounter, exact: Counter
) -> None:
    estimate_error = chars4_error = 0.0
    for text in FIXTURES.values():
        truth = exact.count(text)
        estimate_error += abs(estimate.count(text) - truth) / truth
        chars4_error += abs(len(text) / 4 - truth) / truth
    assert estimate_error < chars4_error / 2


@pytest.mark.parametrize("kind", sorted(NON_ASCII))
def test_non_ascii_text_is_roughly_right(
    estimate: EstimateCounter, exact: Counter, kind: str
) -> None:
    text = NON_ASCII[kind]
    truth = exact.count(text)
    assert 0.6 * truth <= estimate.count(text) <= 1.6 * truth


def test_lone_surrogates_do_not_break_counting(estimate: EstimateCounter) -> None:
    assert estimate.count("abc\ud800def") >= 1


def test_grows_with_length(estimate: EstimateCounter) -> None:
    text = PROSE + PYTHON_CODE + JSON_DOC
    counts = [estimate.count(text[:end]) for end in range(50, len(text) + 1, 50)]
    # monotone up to the odd token lost or gained where a cut splits a word
    assert all(later >= earlier - 2 for earlier, later in pairwise(counts))
    assert counts[-1] > 5 * counts[0]


def test_repetition_scales_linearly(estimate: EstimateCounter) -> None:
    for text in FIXTURES.values():
        once = estimate.count(text)
        assert abs(estimate.count(text * 10) - 10 * once) <= 10 + 0.01 * once


def test_features_and_coefficients_line_up() -> None:
    assert len(features(PROSE)) == len(FEATURES)
    assert set(load_coefficients()) == set(FEATURES)


def test_custom_coefficients_are_used() -> None:
    only_words = {name: 0.0 for name in FEATURES}
    only_words["words_after_space"] = 1.0
    only_words["starts_with_letter"] = 1.0
    counter = EstimateCounter(only_words)
    assert counter.count("one two three four") == 4


def test_missing_coefficients_are_refused() -> None:
    with pytest.raises(ValueError, match="lack"):
        EstimateCounter({"words_after_space": 1.0})


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_count_is_a_natural_number(text: str) -> None:
    count = get_counter("estimate").count(text)
    assert isinstance(count, int)
    assert count >= 0
    assert (count == 0) == (text == "")


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text())
def test_counts_add_up_across_a_split(a: str, b: str) -> None:
    counter = get_counter("estimate")
    assert abs(counter.count(a + b) - counter.count(a) - counter.count(b)) <= 4
