/* The outlier test of a session's correction fit (ctxbudget.accounting), in C.
 *
 * An optional speed-up, built when a C compiler is there (``optional=True`` in
 * setup.py): ``Calibration._fit`` runs for every usage a session reports (33,000 in a
 * 100k-item session), and its residuals, their median and their median absolute
 * deviation were most of a transcript's replay. The same arithmetic as
 * ``accounting._outliers_py``, operation for operation (no fused multiply-add), so the
 * answers are the same; ``tests/test_calibration_fit.py`` checks it on random samples.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* The ``k``-th smallest of ``a[0..n)`` (Wirth's selection), ``a`` reordered so that
 * what is before it is no larger: O(n), where sorting the 100 samples for each median
 * was most of the test's time. */
static double
select_kth(double *a, Py_ssize_t n, Py_ssize_t k)
{
    Py_ssize_t left = 0, right = n - 1;
    while (left < right) {
        double pivot = a[k];
        Py_ssize_t i = left, j = right;
        do {
            while (a[i] < pivot) {
                i++;
            }
            while (pivot < a[j]) {
                j--;
            }
            if (i <= j) {
                double t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        } while (i <= j);
        if (j < k) {
            left = i;
        }
        if (k < i) {
            right = j;
        }
    }
    return a[k];
}

/* The median of ``a[0..m)`` as ``_median`` takes it of the sorted values: the mean of
 * the two middle ones (the same one twice when ``m`` is odd); ``a`` is reordered. */
static double
median_of(double *a, Py_ssize_t m)
{
    double upper = select_kth(a, m, m / 2);
    double lower = upper;
    if (m % 2 == 0) { /* the largest of those before the upper middle */
        lower = a[0];
        for (Py_ssize_t i = 1; i < m / 2; i++) {
            if (a[i] > lower) {
                lower = a[i];
            }
        }
    }
    return (lower + upper) / 2;
}

static PyObject *
residual_outliers(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3 || !PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "residual_outliers(rows: list, k: float, c: float)");
        return NULL;
    }
    double k = PyFloat_AsDouble(args[1]);
    double c = PyFloat_AsDouble(args[2]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    PyObject *rows = args[0];
    Py_ssize_t m = PyList_GET_SIZE(rows);
    if (m == 0) {
        Py_RETURN_NONE;
    }
    double *residuals = PyMem_Malloc(3 * (size_t)m * sizeof(double));
    if (residuals == NULL) {
        return PyErr_NoMemory();
    }
    double *ordered = residuals + m, *deviations = residuals + 2 * m;
    double lowest = 0, highest = 0;
    for (Py_ssize_t i = 0; i < m; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != 3) {
            PyMem_Free(residuals);
            PyErr_SetString(PyExc_TypeError, "a row is (local tokens, items, actual tokens)");
            return NULL;
        }
        double lt = PyLong_AsDouble(PyTuple_GET_ITEM(row, 0));
        double n = PyLong_AsDouble(PyTuple_GET_ITEM(row, 1));
        double d = PyLong_AsDouble(PyTuple_GET_ITEM(row, 2));
        if (PyErr_Occurred()) {
            PyMem_Free(residuals);
            return NULL;
        }
        double by_tokens = k * lt, by_items = c * n; /* d - k * lt - c * n, as Python */
        double r = d - by_tokens;
        residuals[i] = ordered[i] = r - by_items;
        if (i == 0 || residuals[i] < lowest) {
            lowest = residuals[i];
        }
        if (i == 0 || residuals[i] > highest) {
            highest = residuals[i];
        }
    }
    double center = median_of(ordered, m);
    for (Py_ssize_t i = 0; i < m; i++) {
        deviations[i] = fabs(residuals[i] - center);
    }
    double limit = 4 * (median_of(deviations, m) + 1.0);
    double largest = -lowest >= highest ? -lowest : highest;
    if (!(largest > limit)) {
        PyMem_Free(residuals);
        Py_RETURN_NONE;
    }
    PyObject *out = PyList_New(0);
    for (Py_ssize_t i = 0; out != NULL && i < m; i++) {
        if (fabs(residuals[i]) > limit) {
            PyObject *index = PyLong_FromSsize_t(i);
            if (index == NULL || PyList_Append(out, index) < 0) {
                Py_XDECREF(index);
                Py_CLEAR(out);
                break;
            }
            Py_DECREF(index);
        }
    }
    PyMem_Free(residuals);
    return out;
}

static PyMethodDef methods[] = {
    {"residual_outliers", (PyCFunction)(void (*)(void))residual_outliers, METH_FASTCALL,
     "residual_outliers(rows, k, c): the indexes of the rows whose residual is over the "
     "limit, or None when none is (accounting._outliers_py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fit", "The correction fit's outlier test in C.", -1, methods,
};

PyMODINIT_FUNC
PyInit__fit(void)
{
    return PyModule_Create(&module);
}
