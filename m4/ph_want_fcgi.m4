dnl PH_WANT_FCGI: libfcgi (Debian: libfcgi-dev). Required.
AC_DEFUN([PH_WANT_FCGI], [
  PKG_CHECK_MODULES([FCGI], [fcgi], [], [
    AC_CHECK_HEADER([fcgiapp.h], [],
      [AC_MSG_ERROR([libfcgi headers not found: install libfcgi-dev])])
    AC_CHECK_LIB([fcgi], [FCGX_Accept_r], [FCGI_LIBS=-lfcgi],
      [AC_MSG_ERROR([libfcgi not found: install libfcgi-dev])])
  ])
])
