/* A C program: what analyseGoBinary must refuse as "not a Go executable". */
#include <stdio.h>

int main(void) {
	puts("not go");
	return 0;
}
