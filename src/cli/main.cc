#include "cli/app.h"

int main(int argc, char** argv) {
  return bao::cli::RunCli(argc, argv);
}
