/* placeholder until implemented */
typedef int postern_attr_placeholder;
