/* Optional C speed-ups for the PST reader. Each function here has a pure-Python twin
 * (converters/rtf.py) that gives the same bytes; the tests compare the two on random and
 * corpus input. The build is optional (setup.py): without a C compiler pstkit runs the
 * Python code, only slower.
 *
 * lzfu(body, raw_size, start, shift) -> bytes
 *   Decompresses the body of an "LZFu" compressed RTF (MS-OXRTFCP 3.1.3), as rtf._lzfu:
 *   `start` is the initial 4096-byte window seen from the first write position, `shift` the
 *   window position of the first output byte. Output stops at raw_size bytes, at the end
 *   marker or at the end of the input; a reference cut by the end of the input is an error
 *   (ValueError). Nothing in the header is trusted for allocation: a body of n bytes can
 *   make at most 8 n output bytes, so raw_size beyond that never allocates more.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define WINDOW 4096

static PyObject *
lzfu(PyObject *self, PyObject *args)
{
    Py_buffer body, start;
    Py_ssize_t raw_size, shift;
    if (!PyArg_ParseTuple(args, "y*ny*n", &body, &raw_size, &start, &shift))
        return NULL;
    PyObject *result = NULL;
    if (start.len != WINDOW || raw_size < 0 || shift < 0) {
        PyErr_SetString(PyExc_ValueError, "lzfu: bad window or size");
        goto done;
    }
    const unsigned char *in = body.buf;
    Py_ssize_t end = body.len, pos = 0;
    /* 8 items of at most 17 output bytes follow each control byte */
    Py_ssize_t bound = end / 9 * 136 + 136;
    Py_ssize_t want = WINDOW + (raw_size < bound ? raw_size : bound);
    unsigned char *out = PyMem_Malloc((size_t)want + 8 * 17);
    if (out == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    memcpy(out, start.buf, WINDOW);
    Py_ssize_t here = WINDOW;
    int cut = 0;
    Py_BEGIN_ALLOW_THREADS
    while (pos < end && here < want) {
        unsigned control = in[pos++];
        for (int bit = 0; bit < 8; bit++) {
            if (!(control & (1u << bit))) {
                if (pos >= end)
                    break;
                out[here++] = in[pos++];
                continue;
            }
            if (pos + 1 >= end) {
                cut = pos < end;
                pos = end;
                break;
            }
            unsigned ref = (unsigned)in[pos] << 8 | in[pos + 1];
            pos += 2;
            Py_ssize_t back = (here + shift - (Py_ssize_t)(ref >> 4)) & 0xFFF;
            if (back == 0) { /* the reference points at the write position: the end */
                want = here < want ? here : want;
                pos = end;
                break;
            }
            Py_ssize_t length = (ref & 0xF) + 2;
            /* byte by byte: a reference may overlap its own output (a repeated run) */
            for (Py_ssize_t i = 0; i < length; i++, here++)
                out[here] = out[here - back];
        }
    }
    Py_END_ALLOW_THREADS
    if (cut)
        PyErr_SetString(PyExc_ValueError, "compressed RTF ends inside a reference");
    else
        result = PyBytes_FromStringAndSize((const char *)out + WINDOW,
                                           (here < want ? here : want) - WINDOW);
    PyMem_Free(out);
done:
    PyBuffer_Release(&body);
    PyBuffer_Release(&start);
    return result;
}

static PyMethodDef methods[] = {
    {"lzfu", lzfu, METH_VARARGS, "Decompress an LZFu compressed RTF body (see rtf._lzfu)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pstspeed", "Optional C speed-ups for the PST reader.", -1, methods,
};

PyMODINIT_FUNC
PyInit__pstspeed(void)
{
    return PyModule_Create(&module);
}
