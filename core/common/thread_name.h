// Names the calling thread (what `top -H`, `perf report --sort comm` and gdb show), so an
// operator can tell the SQLite writer from an HTTP I/O thread. Linux keeps 15 bytes; longer
// names are cut.
#pragma once

#include <pthread.h>

#include <string>

namespace schedd {

inline void name_this_thread(std::string name) {
  if (name.size() > 15) name.resize(15);
  pthread_setname_np(pthread_self(), name.c_str());
}

}  // namespace schedd
