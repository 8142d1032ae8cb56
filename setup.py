"""The one thing pyproject.toml cannot say: the optional C speed-up of the estimator.

``optional=True``: without a C compiler the build goes on and ctxbudget counts with
the same counts in pure Python (``ctxbudget.tokens.estimate``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ctxbudget.tokens._features",
            ["src/ctxbudget/tokens/_features.c"],
            optional=True,
        )
    ]
)
