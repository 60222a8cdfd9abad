/* Optional C speed-ups for the PST reader and writer. Each function has a pure-Python twin
 * in converters/ (named below) that gives the same result; the tests compare the two on
 * random and corpus input. The build is optional (setup.py): without a C compiler pstkit
 * runs the Python code, only slower. The RTF twins (lzfu, deencapsulate) are in
 * _pstspeed_rtf.c; the writer's in _pstspeed_write.c (b64_strict), _pstspeed_ltp.c
 * (pc_build) and _pstspeed_tc.c (tc_build), with the heap builder they share in
 * _pstspeed_heap.c.
 *
 * pc_entries(leaves, blocks, maps, load) -> list[(pid, type, bytes)]
 *   The entries of a property context's BTH leaves (MS-PST 2.3.3.3), as pst_ndb.pc_entries:
 *   values of fixed types up to 4 bytes are the HNID's own bytes, heap items are sliced
 *   from `blocks` through their page maps `maps` (Python slice rules), sub-node values
 *   come from `load(hnid)`. A HID outside the heap is a ValueError (the caller's NdbError).
 *
 * tc_rows(rows, row_size, cols, blocks, maps, value) -> list[list[(pid, type, bytes)]]
 *   The non-empty cells of a table context's row matrix (MS-PST 2.3.4.4), as
 *   pst_ndb.tc_rows: `rows` is the matrix's blocks, `cols` tuples (pid, type, ib, cb,
 *   byte of the cell-existence bit, its mask); a 4-byte cell of a variable type is an HNID:
 *   a heap item is sliced here when its page map is in `maps` (None: a page whose map
 *   could not be read), anything else is what `value(hnid)` gives.
 *
 * named_props(entries, named, watch) -> (dict, bytes | None)
 *   An item's raw properties keyed for Props, as pst_read.ItemReader.props: ids below
 *   0x8000 as they are, named ones (0x8000 and up) by `named` (unknown ones left out), the
 *   first value of a key kept; and the last value of property `watch` that has at least 4
 *   bytes (the item's code page), or None.
 *
 * b64_lines(data) -> bytes
 *   Base64 (RFC 2045 6.8) in lines of 76 characters joined by CRLF, no CRLF after the last,
 *   as pst_mime._b64: one pass instead of encoding, cutting and joining.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "_pstspeed.h"

/* property types whose value sits in the HNID itself (pst_ndb._INLINE) */
static int
inline_type(unsigned t)
{
    return t == 0x0002 || t == 0x0003 || t == 0x000A || t == 0x000B || t == 0x0004;
}

static PyObject *
entry(unsigned pid, unsigned ptype, PyObject *raw) /* steals raw */
{
    if (raw == NULL)
        return NULL;
    PyObject *t = Py_BuildValue("(IIN)", pid, ptype, raw);
    return t;
}

/* bytes[a:b] with Python's slice rules for 0 <= a, b */
static PyObject *
slice(PyObject *bytes, Py_ssize_t a, Py_ssize_t b)
{
    Py_ssize_t n = PyBytes_GET_SIZE(bytes);
    if (a > n)
        a = n;
    if (b > n)
        b = n;
    if (b < a)
        b = a;
    return PyBytes_FromStringAndSize(PyBytes_AS_STRING(bytes) + a, b - a);
}

static PyObject *
heap_item(PyObject *blocks, PyObject *maps, unsigned long hnid)
{
    Py_ssize_t page = (Py_ssize_t)(hnid >> 16), index = (Py_ssize_t)((hnid >> 5) & 0x7FF);
    if (page >= PyList_GET_SIZE(maps)) {
        PyErr_SetString(PyExc_IndexError, "list index out of range");
        return NULL;
    }
    PyObject *offs = PyList_GET_ITEM(maps, page);
    if (!PyTuple_Check(offs) || index <= 0 || index >= PyTuple_GET_SIZE(offs)) {
        PyErr_Format(PyExc_ValueError, "bad HID %#lx", hnid);
        return NULL;
    }
    Py_ssize_t a = PyLong_AsSsize_t(PyTuple_GET_ITEM(offs, index - 1));
    Py_ssize_t b = PyLong_AsSsize_t(PyTuple_GET_ITEM(offs, index));
    if ((a == -1 || b == -1) && PyErr_Occurred())
        return NULL;
    PyObject *block = PyTuple_GET_ITEM(blocks, page);
    if (!PyBytes_Check(block)) {
        PyErr_SetString(PyExc_TypeError, "heap blocks must be bytes");
        return NULL;
    }
    return slice(block, a < 0 ? 0 : a, b < 0 ? 0 : b);
}

static PyObject *
pc_entries(PyObject *self, PyObject *args)
{
    PyObject *leaves, *blocks, *maps, *load;
    if (!PyArg_ParseTuple(args, "O!O!O!O", &PyList_Type, &leaves, &PyTuple_Type, &blocks,
                          &PyList_Type, &maps, &load))
        return NULL;
    if (PyTuple_GET_SIZE(blocks) < PyList_GET_SIZE(maps)) {
        PyErr_SetString(PyExc_ValueError, "more page maps than heap blocks");
        return NULL;
    }
    /* a tuple holds its items: `load` (Python) cannot free a leaf while it is read */
    PyObject *held = PySequence_Tuple(leaves);
    if (held == NULL)
        return NULL;
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        Py_DECREF(held);
        return NULL;
    }
    for (Py_ssize_t l = 0; l < PyTuple_GET_SIZE(held); l++) {
        PyObject *leaf = PyTuple_GET_ITEM(held, l);
        if (!PyBytes_Check(leaf)) {
            PyErr_SetString(PyExc_TypeError, "BTH leaves must be bytes");
            goto fail;
        }
        const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(leaf);
        Py_ssize_t n = PyBytes_GET_SIZE(leaf) / 8;
        for (Py_ssize_t i = 0; i < n; i++, p += 8) {
            unsigned pid = p[0] | p[1] << 8, ptype = p[2] | p[3] << 8;
            unsigned long hnid = p[4] | p[5] << 8 | p[6] << 16 | (unsigned long)p[7] << 24;
            PyObject *raw;
            if (inline_type(ptype))
                raw = PyBytes_FromStringAndSize((const char *)p + 4, 4);
            else if (hnid & 0x1F)
                raw = PyObject_CallFunction(load, "k", hnid);
            else if (hnid)
                raw = heap_item(blocks, maps, hnid);
            else
                raw = PyBytes_FromStringAndSize(NULL, 0);
            PyObject *e = entry(pid, ptype, raw);
            if (e == NULL || PyList_Append(out, e) < 0) {
                Py_XDECREF(e);
                goto fail;
            }
            Py_DECREF(e);
        }
    }
    Py_DECREF(held);
    return out;
fail:
    Py_DECREF(held);
    Py_DECREF(out);
    return NULL;
}

static PyObject *
tc_rows(PyObject *self, PyObject *args)
{
    PyObject *rows, *cols, *blocks, *maps, *value;
    Py_ssize_t row_size;
    if (!PyArg_ParseTuple(args, "O!nO!O!O!O", &PyList_Type, &rows, &row_size, &PyList_Type,
                          &cols, &PyTuple_Type, &blocks, &PyList_Type, &maps, &value))
        return NULL;
    if (PyTuple_GET_SIZE(blocks) < PyList_GET_SIZE(maps)) {
        PyErr_SetString(PyExc_ValueError, "more page maps than heap blocks");
        return NULL;
    }
    Py_ssize_t ncols = PyList_GET_SIZE(cols);
    /* the columns, unpacked once: pid, type, ib, cb, byte, mask */
    long *c = PyMem_Calloc((size_t)(ncols ? ncols : 1), 6 * sizeof(long));
    if (c == NULL)
        return PyErr_NoMemory();
    /* a tuple holds its items: `value` (Python) cannot free a block while it is read */
    PyObject *held = PySequence_Tuple(rows);
    if (held == NULL) {
        PyMem_Free(c);
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL)
        goto fail;
    for (Py_ssize_t k = 0; k < ncols; k++) {
        PyObject *col = PyList_GET_ITEM(cols, k);
        if (!PyTuple_Check(col) || PyTuple_GET_SIZE(col) != 6) {
            PyErr_SetString(PyExc_TypeError, "a column is 6 integers");
            goto fail;
        }
        for (int j = 0; j < 6; j++) {
            c[6 * k + j] = PyLong_AsLong(PyTuple_GET_ITEM(col, j));
            if (c[6 * k + j] == -1 && PyErr_Occurred())
                goto fail;
        }
    }
    if (row_size <= 0)
        goto done;
    for (Py_ssize_t b = 0; b < PyTuple_GET_SIZE(held); b++) {
        PyObject *block = PyTuple_GET_ITEM(held, b);
        if (!PyBytes_Check(block)) {
            PyErr_SetString(PyExc_TypeError, "row blocks must be bytes");
            goto fail;
        }
        const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(block);
        Py_ssize_t nrows = PyBytes_GET_SIZE(block) / row_size;
        for (Py_ssize_t r = 0; r < nrows; r++) {
            const unsigned char *row = data + r * row_size;
            PyObject *cells = PyList_New(0);
            if (cells == NULL || PyList_Append(out, cells) < 0) {
                Py_XDECREF(cells);
                goto fail;
            }
            Py_DECREF(cells); /* out holds it */
            for (Py_ssize_t k = 0; k < ncols; k++) {
                long *col = c + 6 * k;
                long ib = col[2], cb = col[3], at = col[4];
                if (at < 0 || at >= row_size) {
                    PyErr_SetString(PyExc_IndexError, "index out of range");
                    goto fail;
                }
                if (!(row[at] & col[5]))
                    continue; /* the cell is empty */
                Py_ssize_t a = ib < row_size ? ib : row_size;
                Py_ssize_t z = ib + cb < row_size ? ib + cb : row_size;
                PyObject *cell;
                if (cb == 4 && !inline_type((unsigned)col[1])) {
                    if (z - a < 4) {
                        PyErr_SetString(PyExc_ValueError, "unpack_from requires 4 bytes");
                        goto fail;
                    }
                    const unsigned char *h = row + a;
                    unsigned long hnid = h[0] | h[1] << 8 | h[2] << 16 | (unsigned long)h[3] << 24;
                    Py_ssize_t page = (Py_ssize_t)(hnid >> 16);
                    if (hnid && !(hnid & 0x1F) && page < PyList_GET_SIZE(maps)
                        && PyList_GET_ITEM(maps, page) != Py_None)
                        cell = heap_item(blocks, maps, hnid); /* as Heap.item */
                    else
                        cell = PyObject_CallFunction(value, "k", hnid);
                }
                else
                    cell = PyBytes_FromStringAndSize((const char *)row + a, z > a ? z - a : 0);
                PyObject *e = entry((unsigned)col[0], (unsigned)col[1], cell);
                if (e == NULL || PyList_Append(cells, e) < 0) {
                    Py_XDECREF(e);
                    goto fail;
                }
                Py_DECREF(e);
            }
        }
    }
done:
    PyMem_Free(c);
    Py_DECREF(held);
    return out;
fail:
    PyMem_Free(c);
    Py_DECREF(held);
    Py_XDECREF(out);
    return NULL;
}

static PyObject *
named_props(PyObject *self, PyObject *args)
{
    PyObject *entries, *named;
    long watch;
    if (!PyArg_ParseTuple(args, "OO!l", &entries, &PyDict_Type, &named, &watch))
        return NULL;
    PyObject *held = PySequence_Tuple(entries);
    if (held == NULL)
        return NULL;
    PyObject *raw = PyDict_New(), *seen = Py_None;
    if (raw == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(held); i++) {
        PyObject *e = PyTuple_GET_ITEM(held, i);
        if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) != 3) {
            PyErr_SetString(PyExc_TypeError, "an entry is (id, type, value)");
            goto fail;
        }
        PyObject *pid = PyTuple_GET_ITEM(e, 0), *value = PyTuple_GET_ITEM(e, 2);
        long id = PyLong_AsLong(pid);
        if (id == -1 && PyErr_Occurred())
            goto fail;
        if (id == watch) {
            Py_ssize_t n = PyObject_Length(value);
            if (n < 0)
                goto fail;
            if (n >= 4)
                seen = value;
        }
        PyObject *key = pid;
        if (id >= 0x8000) {
            key = PyDict_GetItemWithError(named, pid);
            if (key == NULL) {
                if (PyErr_Occurred())
                    goto fail;
                continue; /* a named property we do not use */
            }
        }
        PyObject *pair = PyTuple_Pack(2, PyTuple_GET_ITEM(e, 1), value);
        if (pair == NULL)
            goto fail;
        PyObject *kept = PyDict_SetDefault(raw, key, pair); /* the first value wins */
        Py_DECREF(pair);
        if (kept == NULL)
            goto fail;
    }
    PyObject *result = Py_BuildValue("(NO)", raw, seen);
    Py_DECREF(held);
    return result;
fail:
    Py_DECREF(held);
    Py_XDECREF(raw);
    return NULL;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *
b64_quantum(char *o, const unsigned char *i, Py_ssize_t n) /* n = 1, 2 or 3 input bytes */
{
    unsigned v = (unsigned)i[0] << 16 | (n > 1 ? (unsigned)i[1] << 8 : 0) | (n > 2 ? i[2] : 0);
    o[0] = B64[v >> 18];
    o[1] = B64[(v >> 12) & 63];
    o[2] = n > 1 ? B64[(v >> 6) & 63] : '=';
    o[3] = n > 2 ? B64[v & 63] : '=';
    return o + 4;
}

static PyObject *
b64_lines(PyObject *self, PyObject *args)
{
    Py_buffer in;
    if (!PyArg_ParseTuple(args, "y*", &in))
        return NULL;
    Py_ssize_t n = in.len;
    if (n > (PY_SSIZE_T_MAX / 4) * 3 - 3) {
        PyBuffer_Release(&in);
        return PyErr_NoMemory();
    }
    Py_ssize_t chars = (n + 2) / 3 * 4, lines = (chars + 75) / 76;
    PyObject *out = PyBytes_FromStringAndSize(NULL, chars + (lines ? 2 * (lines - 1) : 0));
    if (out == NULL) {
        PyBuffer_Release(&in);
        return NULL;
    }
    char *o = PyBytes_AS_STRING(out);
    const unsigned char *i = in.buf;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t left = n;
    while (left > 0) {
        Py_ssize_t chunk = left < 57 ? left : 57; /* 57 bytes make one 76-character line */
        const unsigned char *stop = i + chunk;
        while (stop - i >= 3) {
            o = b64_quantum(o, i, 3);
            i += 3;
        }
        if (stop - i > 0) {
            o = b64_quantum(o, i, stop - i);
            i = stop;
        }
        left -= chunk;
        if (left > 0) {
            *o++ = '\r';
            *o++ = '\n';
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&in);
    return out;
}

static PyMethodDef methods[] = {
    {"named_props", named_props, METH_VARARGS, "An item's raw properties keyed for Props."},
    {"deencapsulate", pst_deencapsulate, METH_VARARGS, "HTML from \\fromhtml1 RTF (rtf.py)."},
    {"b64_lines", b64_lines, METH_VARARGS, "Base64 in CRLF-joined 76-character lines."},
    {"lzfu", pst_lzfu, METH_VARARGS, "Decompress an LZFu compressed RTF body (see rtf._lzfu)."},
    {"pc_entries", pc_entries, METH_VARARGS, "A property context's raw entries (pst_ndb)."},
    {"tc_rows", tc_rows, METH_VARARGS, "A table context's non-empty cells (pst_ndb)."},
    {"b64_strict", pst_b64_strict, METH_VARARGS, "A base64 body decoded (write/parts.py)."},
    {"pc_build", pst_pc_build, METH_VARARGS, "A new property context (write/ltp.py)."},
    {"tc_build", pst_tc_build, METH_VARARGS, "A new table context (write/ltp.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pstspeed", "Optional C speed-ups for the PST reader and writer.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__pstspeed(void)
{
    pst_write_init();
    return PyModule_Create(&module);
}
