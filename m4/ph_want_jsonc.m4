dnl PH_WANT_JSONC: json-c >= 0.15 (Debian: libjson-c-dev). Required.
AC_DEFUN([PH_WANT_JSONC], [
  PKG_CHECK_MODULES([JSONC], [json-c >= 0.15], [],
    [AC_MSG_ERROR([json-c >= 0.15 not found: install libjson-c-dev])])
])
