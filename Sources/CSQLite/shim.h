#include <sqlite3.h>
#if defined(__linux__)
#include <malloc.h>  // malloc_trim: return freed page-cache memory to the system after a migration
#endif
