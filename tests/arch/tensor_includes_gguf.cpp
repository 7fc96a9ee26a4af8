// Must NOT compile: `tensor` sits below `gguf` in the module graph.
#include "gguf/file.h"
int main() { return 0; }
