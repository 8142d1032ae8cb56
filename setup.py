"""The one thing pyproject.toml cannot say: the optional C speed-ups.

``optional=True``: without a C compiler the build goes on and ctxbudget computes the
same in pure Python: the estimator's counts (``ctxbudget.tokens.estimate``) and the
outlier test of the session's correction (``ctxbudget.accounting``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ctxbudget.tokens._features",
            ["src/ctxbudget/tokens/_features.c"],
            optional=True,
        ),
        Extension("ctxbudget._fit", ["src/ctxbudget/_fit.c"], optional=True),
    ]
)
