#include "ws_frame.h"
