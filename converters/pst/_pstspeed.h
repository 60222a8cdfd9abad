/* What _pstspeed_rtf.c, _pstspeed_write.c, _pstspeed_ltp.c and _pstspeed_tc.c give the
 * module in _pstspeed.c. */
#ifndef PSTKIT_PSTSPEED_H
#define PSTKIT_PSTSPEED_H

#include <Python.h>

PyObject *pst_lzfu(PyObject *self, PyObject *args);
PyObject *pst_deencapsulate(PyObject *self, PyObject *args);
PyObject *pst_b64_strict(PyObject *self, PyObject *args);
void pst_write_init(void);
PyObject *pst_pc_build(PyObject *self, PyObject *args);
PyObject *pst_tc_build(PyObject *self, PyObject *args);

#endif
