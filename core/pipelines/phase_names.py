"""What a stage's name says about its lifecycle phase: ``e2e-tests`` verifies, ``deploy-prod``
deploys, ``build-image`` packages.

Names are split into words (``trainModel``, ``train_model`` and ``train-model`` alike, CI
expressions dropped) and each word is looked up in a table of stems that take a common English
suffix. Apart from the content rules in :mod:`~mltop.core.pipelines.phases` because a name is the
author's intent and is weighed first; the word tables are the place to teach mltop a new word.
"""

from __future__ import annotations

import re

from mltop.core.pipelines.model import Phase, one_line

P = Phase

# --- names -------------------------------------------------------------------------------------
# token -> phase; a trailing "*" matches any word starting with the stem.
_NAME_WORDS: dict[Phase, tuple[str, ...]] = {
    P.MONITOR: ("monitor*", "drift", "observab*", "alert*", "uptime", "healthcheck*", "probe*"),
    P.DEPLOY: (
        "deploy*",
        "release*",
        "rollout",
        "rollback",
        "promot*",
        "canary",
        "serve",
        "serving",
        "provision*",
        "pages",
    ),
    P.PACKAGE: (
        "packag*",
        "publish*",
        "wheel*",
        "sdist",
        "dist",
        "docker*",
        "regist*",
        "upload*",
        "bundle*",
        "export*",
    ),
    P.VERIFY: (
        "evaluat*",
        "eval",
        "verif*",
        "sanity",
        "plot*",
        "report*",
        "visualiz*",
        "evals",
        "validat*",
        "e2e",
        "acceptance",
        "smoke",
        "security",
        "scan*",
        "audit*",
        "bandit",
        "codeql",
        "sast",
        "dast",
        "trivy",
        "semgrep",
        "safety",
        "vuln*",
        "fuzz*",
        "benchmark*",
        "bench",
        "compar*",
        "metric*",
        "predict*",
        "infer*",
        "scor*",
        "fairness",
        "explain*",
    ),
    P.TEST: (
        "test*",
        "unit",
        "unittest*",
        "integration",
        "pytest",
        "tox",
        "nox",
        "train*",
        "fit",
        "tune",
        "tuning",
        "hpo",
        "sweep*",
        "finetun*",
        "coverage",
    ),
    P.BUILD: (
        "build*",
        "lint*",
        "compil*",
        "format*",
        "fmt",
        "typing",
        "typecheck*",
        "mypy",
        "pyright",
        "codegen",
        "generat*",
        "docs",
        "doc",
        "sphinx",
        "featur*",
        "preprocess*",
        "process*",
        "transform*",
        "clean*",
        "convert*",
        "encod*",
        "tokeniz*",
        "embed*",
        "style",
        "precommit",
        "ruff",
        "black",
        "flake8",
        "pylint",
        "isort",
        "gofmt",
        "golangci",
        "yamllint",
        "shellcheck",
        "locales",
    ),
    P.SOURCE: (
        "checkout",
        "clone",
        "load*",
        "fetch*",
        "download*",
        "ingest*",
        "prepar*",
        "prep",
        "dataset*",
        "extract*",
        "split",
        "acquir*",
        "collect*",
        "scrap*",
        "read*",
    ),
}
# Words that say little on their own ("check" is a lint, a test or a sanity check): they decide
# only when no other word of the name and nothing the stage runs says more.
_WEAK_NAME_WORDS: dict[Phase, tuple[str, ...]] = {
    P.VERIFY: ("check*",),
    P.SOURCE: ("data", "get"),
}
_PACKAGE_OBJECTS = {"image", "images", "docker", "container", "wheel", "wheels", "sdist", "dist"}
_DATA_WORDS = {"data", "dataset", "datasets", "schema", "input", "inputs"}
_EXPR = re.compile(r"\$\{\{.*?\}\}|\$\(.*?\)|\$\[\[.*?\]\]|\{\{.*?\}\}")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


def name_tokens(name: str) -> list[str]:
    text = _EXPR.sub(" ", name)
    text = _CAMEL.sub(" ", text)
    return [t for t in re.split(r"[^A-Za-z0-9]+", text.lower()) if t]


_SUFFIXES = {
    "",
    "s",
    "es",
    "e",
    "ed",
    "er",
    "ers",
    "ing",
    "ings",
    "ion",
    "ions",
    "ation",
    "ations",
    "ization",
    "isation",
    "ize",
    "ise",
    "ment",
    "ments",
    "ity",
    "ility",
    "ability",
    "y",
    "ry",
    "ries",
    "or",
    "ors",
    "al",
    "ate",
    "ated",
    "ator",
    "ration",
    "izer",
    "izers",
    "ting",
    "ter",
    "ted",
    "up",
    "ning",
    "ison",
    "ence",
}


def _word_phase(token: str, table: dict[Phase, tuple[str, ...]] = _NAME_WORDS) -> Phase | None:
    """The phase a name word points to; ``stem*`` takes the stem plus a common English suffix,
    so ``featurization`` matches ``featur*`` but ``buildserver`` does not match ``build*``."""
    for phase, words in table.items():
        for word in words:
            if word.endswith("*"):
                stem = word[:-1]
                if token.startswith(stem) and token[len(stem) :] in _SUFFIXES:
                    return phase
            elif token == word:
                return phase
    return None


def phase_from_name(name: str) -> tuple[Phase, str] | None:
    tokens = name_tokens(name)
    if "pre" in tokens and "commit" in tokens:
        tokens = ["precommit" if t == "pre" else t for t in tokens if t != "commit"]
    for token in tokens:
        phase = _word_phase(token)
        if phase is None:
            continue
        label = one_line(name, 60)
        if phase is P.BUILD and _PACKAGE_OBJECTS & set(tokens):
            obj = sorted(_PACKAGE_OBJECTS & set(tokens))[0]
            return P.PACKAGE, f'name "{label}" says build + {obj}'
        if phase is P.VERIFY and token.startswith("validat") and _DATA_WORDS & set(tokens):
            return P.SOURCE, f'name "{label}" says data validation'
        if phase is P.MONITOR or (phase is P.VERIFY and "drift" in tokens):
            return P.MONITOR, f'name "{label}" says {token}'
        return phase, f'name "{label}" says {token}'
    return None


def phase_from_weak_name(name: str) -> tuple[Phase, str] | None:
    """A phase from a word that only decides when nothing else does (``sanity_check``)."""
    for token in name_tokens(name):
        phase = _word_phase(token, _WEAK_NAME_WORDS)
        if phase is not None:
            return phase, f'name "{one_line(name, 60)}" says {token}'
    return None
