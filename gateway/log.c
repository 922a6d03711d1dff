/* placeholder: being written */
typedef int fmq_placeholder;
