#include "client_proto.h"
