/* placeholder until implemented */
typedef int postern_deliver_placeholder;
