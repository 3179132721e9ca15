dnl PH_WANT_BDB: Berkeley DB 5.3 (Debian: libdb-dev, which is libdb5.3-dev).
dnl Required. There is no .pc file, so probe header and library directly.
AC_DEFUN([PH_WANT_BDB], [
  AC_CHECK_HEADER([db.h], [],
    [AC_MSG_ERROR([Berkeley DB headers not found: install libdb-dev])])
  AC_MSG_CHECKING([for Berkeley DB 5.3 in db.h])
  AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[#include <db.h>]], [[
#if DB_VERSION_MAJOR != 5 || DB_VERSION_MINOR < 3
#error need Berkeley DB 5.3
#endif
]])], [AC_MSG_RESULT([yes])],
    [AC_MSG_RESULT([no])
     AC_MSG_ERROR([db.h is not Berkeley DB 5.3: install libdb-dev (libdb5.3-dev)])])
  BDB_LIBS=
  for lib in db-5.3 db; do
    AC_CHECK_LIB([$lib], [db_env_create], [BDB_LIBS=-l$lib; break])
  done
  AS_IF([test -z "$BDB_LIBS"],
    [AC_MSG_ERROR([Berkeley DB library not found: install libdb-dev])])
  AC_SUBST([BDB_LIBS])
])
