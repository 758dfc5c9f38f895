/* tsf_chart.h - the SVG line charts of the tools: tsf train's curves.svg (loss and accuracy per
   epoch, tools/tsf_train.c) and the demo's curves.svg (loss and accuracy per step, a colour a
   variant, tools/demo.c). Include it after tsf_tools.h.

   A tool writes the SVG's header and its layout; it draws with these:
     tc_panel       a box of the picture and the data ranges it shows, y linear or log10;
                    tc_x and tc_y map data into it, values outside the ranges at its edge
     tc_frame       the box's outline
     tc_line        a line; tc_text a text (XML-escaped); tc_labelled_line a line and its
                    label (a legend entry, a marker), on one line of the file
     tc_series      a polyline through a series' points with a dot at each; NaN points are
                    left out
     tc_tick_step   a step of 1, 2 or 5 times a power of ten for about five ticks
   Styles are the SVG attributes themselves (attrs: "stroke=\"#ddd\"", "font-size=\"11\"
   text-anchor=\"end\""), written as given after the coordinates. Everything is written with
   fprintf: the caller checks the FILE for errors when it closes it. */
#ifndef TSF_CHART_H
#define TSF_CHART_H

#include <math.h>
#include <stdio.h>

/* A plot area: the box (left, top, width, height, in the picture's pixels) shows data x from
   x0 (left edge) to x1 and y from y0 (bottom) to y1, y on a log10 scale when logy (y0 > 0). */
typedef struct tc_panel {
    double left, top, width, height;
    double x0, x1, y0, y1;
    int logy;
} tc_panel;

/* The picture's x of data x (clamped to the panel's range). */
TT_FN double tc_x(const tc_panel *p, double x) {
    x = x < p->x0 ? p->x0 : x > p->x1 ? p->x1 : x;
    return p->left + (x - p->x0) / (p->x1 - p->x0) * p->width;
}

/* The picture's y of data y (clamped to the panel's range). */
TT_FN double tc_y(const tc_panel *p, double y) {
    double lo = p->logy ? log10(p->y0) : p->y0, hi = p->logy ? log10(p->y1) : p->y1;
    y = y < p->y0 ? p->y0 : y > p->y1 ? p->y1 : y;
    return p->top + p->height - ((p->logy ? log10(y) : y) - lo) / (hi - lo) * p->height;
}

/* Text for SVG: the XML escapes. */
TT_FN void tc_xml(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '&')
            fputs("&amp;", f);
        else if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '"')
            fputs("&quot;", f);
        else
            fputc(*s, f);
    }
}

/* A line and a text without the newline after them. */
TT_FN void tc_put_line(FILE *f, double x1, double y1, double x2, double y2, const char *attrs) {
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" %s/>", x1, y1, x2, y2, attrs);
}

TT_FN void tc_put_text(FILE *f, double x, double y, const char *attrs, const char *text) {
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" %s>", x, y, attrs);
    tc_xml(f, text);
    fputs("</text>", f);
}

/* A line from (x1, y1) to (x2, y2), in the picture's pixels. */
TT_FN void tc_line(FILE *f, double x1, double y1, double x2, double y2, const char *attrs) {
    tc_put_line(f, x1, y1, x2, y2, attrs);
    fputc('\n', f);
}

/* A text at (x, y) (its baseline; text-anchor in attrs places it along x). */
TT_FN void tc_text(FILE *f, double x, double y, const char *attrs, const char *text) {
    tc_put_text(f, x, y, attrs, text);
    fputc('\n', f);
}

/* A line and its label at (tx, ty): a legend entry, a marker. */
TT_FN void tc_labelled_line(FILE *f, double x1, double y1, double x2, double y2,
                            const char *line_attrs, double tx, double ty, const char *text_attrs,
                            const char *label) {
    tc_put_line(f, x1, y1, x2, y2, line_attrs);
    tc_put_text(f, tx, ty, text_attrs, label);
    fputc('\n', f);
}

/* The panel's outline. */
TT_FN void tc_frame(FILE *f, const tc_panel *p, const char *stroke) {
    fprintf(f,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
            "stroke=\"%s\"/>\n",
            p->left, p->top, p->width, p->height, stroke);
}

/* The series of points (x[i], y[i]), i < n, as a line 2 pixels wide in colour (dashed when
   dash is a dash array such as "6,3", else solid) with a dot of radius dot at each point.
   Points whose y is NaN are left out. Returns 0 when there was none to draw (nothing drawn). */
TT_FN int tc_series(FILE *f, const tc_panel *p, const double *x, const double *y, int n,
                    const char *colour, const char *dash, double dot) {
    int i, shown = 0;
    for (i = 0; i < n; i++) shown += y[i] == y[i];
    if (shown == 0) return 0;
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s%s%s points=\"", colour,
            dash ? " stroke-dasharray=\"" : "", dash ? dash : "", dash ? "\"" : "");
    for (i = 0; i < n; i++)
        if (y[i] == y[i]) fprintf(f, "%.1f,%.1f ", tc_x(p, x[i]), tc_y(p, y[i]));
    fprintf(f, "\"/>\n");
    for (i = 0; i < n; i++)
        if (y[i] == y[i])
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%g\" fill=\"%s\"/>\n", tc_x(p, x[i]),
                    tc_y(p, y[i]), dot, colour);
    return 1;
}

/* A step of 1, 2 or 5 times a power of ten giving about 5 ticks from 0 to range (> 0). */
TT_FN double tc_tick_step(double range) {
    double raw = range / 5, mag = pow(10, floor(log10(raw)));
    return raw <= mag ? mag : raw <= 2 * mag ? 2 * mag : raw <= 5 * mag ? 5 * mag : 10 * mag;
}

#endif /* TSF_CHART_H */
