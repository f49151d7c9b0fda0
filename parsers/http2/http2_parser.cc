#include "parsers/http2/http2_parser.h"
