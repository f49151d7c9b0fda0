#include "parsers/http1/http1_parser.h"
