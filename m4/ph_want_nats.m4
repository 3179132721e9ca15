dnl PH_WANT_NATS: the NATS C client, libnats >= 3.3 (Debian: libnats-dev),
dnl for "payhook ship" and "sink": "nats". Optional: --with-nats requires
dnl it, --without-nats leaves it out, and by default it is used when found.
dnl Sets HAVE_NATS, NATS_CFLAGS, NATS_LIBS and the automake conditional
dnl HAVE_NATS.
AC_DEFUN([PH_WANT_NATS], [
  AC_ARG_WITH([nats],
    [AS_HELP_STRING([--with-nats],
      [build payhook ship and the "nats" sink with the NATS C client (libnats-dev); default: when found])],
    [], [with_nats=check])
  ph_have_nats=no
  AS_IF([test "x$with_nats" != xno], [
    PKG_CHECK_MODULES([NATS], [libnats >= 3.3], [ph_have_nats=yes], [
      AC_CHECK_HEADER([nats/nats.h], [
        AC_CHECK_LIB([nats], [js_PublishMsg],
          [ph_have_nats=yes; NATS_CFLAGS=; NATS_LIBS=-lnats])])
    ])
  ])
  AS_IF([test "x$with_nats" = xyes && test "x$ph_have_nats" = xno],
    [AC_MSG_ERROR([--with-nats: the NATS C client was not found: install libnats-dev])])
  AS_IF([test "x$ph_have_nats" = xyes],
    [AC_DEFINE([HAVE_NATS], [1], [Define if built with the NATS C client.])],
    [NATS_CFLAGS=; NATS_LIBS=])
  AC_SUBST([NATS_CFLAGS])
  AC_SUBST([NATS_LIBS])
  AM_CONDITIONAL([HAVE_NATS], [test "x$ph_have_nats" = xyes])
  AC_MSG_NOTICE([NATS support (payhook ship, "sink": "nats"): $ph_have_nats])
])
