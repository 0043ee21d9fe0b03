/* placeholder until implemented */
typedef int postern_addr_placeholder;
