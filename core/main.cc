#include "core/daemon/daemon.h"

int main(int argc, char** argv) { return schedd::cli_main(argc, argv); }
