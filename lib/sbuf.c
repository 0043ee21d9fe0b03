/* placeholder until implemented */
typedef int postern_sbuf_placeholder;
