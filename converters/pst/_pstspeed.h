/* What _pstspeed_rtf.c gives the module in _pstspeed.c. */
#ifndef PSTKIT_PSTSPEED_H
#define PSTKIT_PSTSPEED_H

#include <Python.h>

PyObject *pst_lzfu(PyObject *self, PyObject *args);
PyObject *pst_deencapsulate(PyObject *self, PyObject *args);

#endif
