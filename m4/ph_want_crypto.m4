dnl PH_WANT_CRYPTO: OpenSSL libcrypto >= 1.1 (Debian: libssl-dev). Required.
AC_DEFUN([PH_WANT_CRYPTO], [
  PKG_CHECK_MODULES([CRYPTO], [libcrypto >= 1.1], [],
    [AC_MSG_ERROR([OpenSSL libcrypto not found: install libssl-dev])])
])
