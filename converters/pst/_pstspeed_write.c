/* Optional C speed-ups for the PST writer (converters/pst/write). Each has a pure-Python
 * twin that is the reference (named below); tests/pst/test_write_speedups.py compares the
 * two on random and corpus input.
 *
 * b64_strict(text) -> bytes | None
 *   A well-formed base64 body as parts.b64_strict_py decodes it (CR and LF dropped, missing
 *   padding added, then binascii.a2b_base64(strict_mode=True)), in one pass over the str's
 *   own bytes where the twin made three copies of the body (encode, translate, pad)
 *   before decoding. None for anything else (another character, padding inside, more or
 *   less of it than the length needs): the caller asks the twin, as binascii's strict
 *   mode has treated such input differently from one Python version to the next.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "_pstspeed.h"

/* value of a base64 character; 64 for CR/LF (dropped), 65 for '=', 255 for any other */
static unsigned char B64_VALUE[256];

static void
b64_table(void)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    memset(B64_VALUE, 255, sizeof B64_VALUE);
    for (int i = 0; i < 64; i++)
        B64_VALUE[(unsigned char)alphabet[i]] = (unsigned char)i;
    B64_VALUE['\r'] = B64_VALUE['\n'] = 64;
    B64_VALUE['='] = 65;
}

/* Decode `n` bytes of `in` into `out` (room for n / 4 * 3 + 3); the number of bytes
 * written, or -1 where the text is not well-formed. With `k` data characters and `pads`
 * '=' (all after the data), the padded text has `pads + fill` '=' so that its length is a
 * multiple of 4; well-formed is k % 4 == 0 with no '=', k % 4 == 2 with two, k % 4 == 3
 * with one: strict a2b_base64 of every Python version decodes those alike. */
static Py_ssize_t
b64_decode(const unsigned char *in, Py_ssize_t n, unsigned char *out)
{
    unsigned char *o = out;
    unsigned acc = 0;
    Py_ssize_t k = 0, pads = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        /* whole quads of data characters at once (a 76-character line is 19 of them) */
        while ((k & 3) == 0 && !pads && n - i >= 4) {
            unsigned a = B64_VALUE[in[i]], b = B64_VALUE[in[i + 1]],
                     c = B64_VALUE[in[i + 2]], d = B64_VALUE[in[i + 3]];
            if ((a | b | c | d) >= 64)
                break;
            unsigned q = a << 18 | b << 12 | c << 6 | d;
            o[0] = (unsigned char)(q >> 16);
            o[1] = (unsigned char)(q >> 8);
            o[2] = (unsigned char)q;
            o += 3;
            k += 4;
            i += 4;
        }
        if (i >= n)
            break;
        unsigned v = B64_VALUE[in[i]];
        if (v < 64) {
            if (pads)
                return -1; /* data after padding */
            acc = (acc << 6) | v;
            if ((++k & 3) == 0) {
                o[0] = (unsigned char)(acc >> 16);
                o[1] = (unsigned char)(acc >> 8);
                o[2] = (unsigned char)acc;
                o += 3;
                acc = 0;
            }
        }
        else if (v == 65)
            pads++;
        else if (v != 64)
            return -1; /* not base64 */
    }
    Py_ssize_t fill = (4 - (k + pads) % 4) % 4;
    Py_ssize_t all = pads + fill;
    switch (k & 3) {
    case 0:
        if (all)
            return -1;
        break;
    case 2:
        if (all != 2)
            return -1;
        *o++ = (unsigned char)(acc >> 4);
        break;
    case 3:
        if (all != 1)
            return -1;
        *o++ = (unsigned char)(acc >> 10);
        *o++ = (unsigned char)(acc >> 2);
        break;
    default:
        return -1;
    }
    return o - out;
}

PyObject *
pst_b64_strict(PyObject *self, PyObject *args)
{
    PyObject *text;
    if (!PyArg_ParseTuple(args, "U", &text))
        return NULL;
    if (!PyUnicode_IS_ASCII(text))
        Py_RETURN_NONE; /* the twin: an encode error, or bytes >= 0x80 strict mode refuses */
    const unsigned char *in = PyUnicode_1BYTE_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    PyObject *out = PyBytes_FromStringAndSize(NULL, n / 4 * 3 + 3);
    if (out == NULL)
        return NULL;
    Py_ssize_t got;
    Py_BEGIN_ALLOW_THREADS
    got = b64_decode(in, n, (unsigned char *)PyBytes_AS_STRING(out));
    Py_END_ALLOW_THREADS
    if (got < 0) {
        Py_DECREF(out);
        Py_RETURN_NONE;
    }
    if (_PyBytes_Resize(&out, got) < 0)
        return NULL;
    return out;
}

void
pst_write_init(void)
{
    b64_table();
}
