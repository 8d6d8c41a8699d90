/* font.h — a 5x7 bitmap font for ASCII 32..126 (plots draw it scaled). */
#ifndef DS_FONT_INCLUDED
#define DS_FONT_INCLUDED

#define DS_FONT_W 5
#define DS_FONT_H 7    /* cap height: text boxes are this tall */
#define DS_FONT_ROWS 8 /* with the descender row below the baseline */

/* Row r (0 = top, < DS_FONT_ROWS) of the glyph for c as bits, bit 4 = leftmost
 * column; characters outside 32..126 draw as '?'. */
unsigned ds_font_row(int c, int r);

#endif
