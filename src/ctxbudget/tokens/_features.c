/* The estimator's feature counts (ctxbudget.tokens.estimate).
 *
 * An optional speed-up, built when a C compiler is there (``optional=True`` in
 * setup.py). ``non_ascii_counts`` does what the Python's encoding error handler and
 * non-ASCII class counts do (``estimate._features_py``), in one pass over the text.
 * ``ascii_counts`` counts as ``estimate._ascii_counts_py`` does: the same counts, each pattern counted as
 * ``bytes.count`` counts it (non-overlapping, leftmost first), in one pass over the
 * class string instead of two dozen ``bytes.count`` calls. A run of one class of
 * length L holds L / k non-overlapping copies of k of it; a pattern of distinct
 * characters (" a", "..a") cannot overlap itself, so its occurrences are its count.
 * ``tests/test_estimate_features.py`` checks it against the Python on random text.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

typedef struct {
    Py_ssize_t upper_pairs, run4, run10, run13, digit_groups;
    Py_ssize_t punct2, punct3, nl2, nl3;
} Runs;

/* What a finished run of ``length`` characters of class ``c`` adds. */
static void
close_run(Runs *r, unsigned char c, Py_ssize_t length)
{
    switch (c) {
    case 'A':
        r->upper_pairs += length / 2;
        break;
    case 'a':
        r->run4 += length / 4;
        r->run10 += length / 10;
        r->run13 += length / 13;
        break;
    case '0':
        r->digit_groups += (length + 2) / 3; /* a run of L digits: ceil(L / 3) groups */
        break;
    case '.':
        r->punct2 += length / 2;
        r->punct3 += length / 3;
        break;
    case '\n':
        r->nl2 += length / 2;
        r->nl3 += length / 3;
        break;
    default:
        break;
    }
}

static int
is_letter(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* ``'s 't 'm 'd 're 've 'll`` (either case, as the estimator's regex) not followed by
 * a letter: the length of the contraction at ``raw[i]`` (a quote), else 0. */
static int
contraction_at(const unsigned char *raw, Py_ssize_t n, Py_ssize_t i)
{
    if (i + 1 >= n) {
        return 0;
    }
    unsigned char a = raw[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd' || a == 'S' || a == 'T' || a == 'M' ||
        a == 'D') {
        return (i + 2 >= n || !is_letter(raw[i + 2])) ? 2 : 0;
    }
    if (i + 2 >= n) {
        return 0;
    }
    unsigned char b = raw[i + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l') ||
        (a == 'R' && b == 'E') || (a == 'V' && b == 'E') || (a == 'L' && b == 'L')) {
        return (i + 3 >= n || !is_letter(raw[i + 3])) ? 3 : 0;
    }
    return 0;
}

static PyObject *
ascii_counts(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "ascii_counts(raw: bytes, cased: bytes)");
        return NULL;
    }
    const unsigned char *raw = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t nraw = PyBytes_GET_SIZE(args[0]);
    const unsigned char *cased = (const unsigned char *)PyBytes_AS_STRING(args[1]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[1]);

    Py_ssize_t w_space = 0, w_punct = 0, w_newline = 0, w_digit = 0, camel = 0;
    Py_ssize_t punct_punct_a = 0, space_punct_a = 0, space_digit = 0, punct = 0;
    Py_ssize_t space_punct = 0, indent = 0, newlines = 0, punct_newline = 0;
    Runs runs = {0};
    unsigned char p1 = 0, p2 = 0; /* the two classes before, letters lower-cased */
    unsigned char before = 0;     /* the class before, as it is */
    Py_ssize_t run = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = cased[i];
        unsigned char l = c == 'A' ? 'a' : c;
        if (c == before) {
            run++;
        }
        else {
            close_run(&runs, before, run);
            run = 1;
        }
        switch (l) {
        case 'a':
            if (p1 == ' ') {
                w_space++;
                indent += p2 == ' ';
            }
            else if (p1 == '.') {
                w_punct++;
                punct_punct_a += p2 == '.';
                space_punct_a += p2 == ' ';
            }
            else if (p1 == '\n') {
                w_newline++;
            }
            else if (p1 == '0') {
                w_digit++;
            }
            camel += c == 'A' && before == 'a';
            break;
        case '0':
            if (p1 == ' ') {
                space_digit++;
                indent += p2 == ' ';
            }
            break;
        case '.':
            punct++;
            if (p1 == ' ') {
                space_punct++;
                indent += p2 == ' ';
            }
            break;
        case '\n':
            newlines++;
            punct_newline += p1 == '.';
            break;
        default:
            break;
        }
        p2 = p1;
        p1 = l;
        before = c;
    }
    close_run(&runs, before, run);

    Py_ssize_t escapes = 0, backslashes = 0, contractions = 0, tabs = 0, tab_runs = 0;
    for (Py_ssize_t i = 0; i < nraw; i++) {
        unsigned char c = raw[i];
        if (c == '\\') {
            backslashes++;
            escapes += i + 1 < nraw && (raw[i + 1] == 'n' || raw[i + 1] == 't');
        }
        else if (c == '\t') {
            tabs++;
            tab_runs += i == 0 || raw[i - 1] != '\t';
        }
        else if (c == '\'') {
            int length = contraction_at(raw, nraw, i);
            if (length) {
                contractions++;
                i += length - 1; /* a match is consumed whole, as findall does */
            }
        }
    }

    Py_ssize_t starts = n > 0 && (cased[0] == 'a' || cased[0] == 'A');
    return Py_BuildValue(
        "(nnnnnnnnnnnnnnnnnnnnnnnn)",
        w_space,
        w_punct,
        w_newline,
        w_digit,
        camel,
        starts,
        w_punct - punct_punct_a - space_punct_a,
        runs.upper_pairs,
        runs.run4,
        runs.run10,
        runs.run13,
        runs.digit_groups,
        space_digit,
        punct,
        runs.punct2,
        runs.punct3,
        space_punct,
        indent,
        newlines - runs.nl2 - runs.nl3 - punct_newline,
        escapes,
        backslashes,
        contractions,
        tabs,
        tab_runs);
}

/* The text as the estimator's bytes and its non-ASCII counts, in one pass: each ASCII
 * character is its own byte; each other one is its class's placeholder byte, 0x80 + (the
 * low 3 bits of its entry in ``table``) - 1, and adds one to the count its high bits
 * name (1..6: letters of 2 and 3 UTF-8 bytes, CJK, hangul, symbols of the BMP and
 * beyond). ``table`` (writable, 0x110000 bytes) is filled in by the Python for the
 * characters met: an entry of 0 (not classified yet) returns None, and the Python
 * classifies the text's characters and asks again. */
static PyObject *
non_ascii_counts(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyUnicode_Check(args[0]) || !PyByteArray_Check(args[1]) ||
        PyByteArray_GET_SIZE(args[1]) < 0x110000) {
        PyErr_SetString(PyExc_TypeError,
                        "non_ascii_counts(text: str, table: bytearray of 0x110000)");
        return NULL;
    }
    PyObject *text = args[0];
    const unsigned char *table = (const unsigned char *)PyByteArray_AS_STRING(args[1]);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    if (out == NULL) {
        return NULL;
    }
    unsigned char *raw = (unsigned char *)PyBytes_AS_STRING(out);
    Py_ssize_t counts[7] = {0};
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 code = PyUnicode_READ(kind, data, i);
        if (code < 0x80) {
            raw[i] = (unsigned char)code;
            continue;
        }
        unsigned char entry = table[code];
        if ((entry & 7) == 0 || (entry >> 3) == 0 || (entry >> 3) > 6) {
            Py_DECREF(out);
            Py_RETURN_NONE;
        }
        raw[i] = (unsigned char)(0x80 + (entry & 7) - 1);
        counts[entry >> 3]++;
    }
    return Py_BuildValue("(Nnnnnnn)", out, counts[1], counts[2], counts[3], counts[4],
                         counts[5], counts[6]);
}

static PyMethodDef methods[] = {
    {"non_ascii_counts", (PyCFunction)(void (*)(void))non_ascii_counts, METH_FASTCALL,
     "non_ascii_counts(text, table): (the text as classed bytes, its non-ASCII counts), "
     "or None while a character of it is not in the table yet."},
    {"ascii_counts", (PyCFunction)(void (*)(void))ascii_counts, METH_FASTCALL,
     "ascii_counts(raw, cased): the estimator's counts up to tab_runs, in FEATURES order."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_features", "The estimator's feature counts in C.", -1, methods,
};

PyMODINIT_FUNC
PyInit__features(void)
{
    return PyModule_Create(&module);
}
