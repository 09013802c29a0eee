"""The page editor (editor.canvas): the canvas of a page and its endpoints."""

from django.urls import path

from editor import canvas

PAGE = "edit/<slug:app>/p/<slug:page>/"
WIDGET = PAGE + "w/<str:name>/"

urlpatterns = [
    path(PAGE, canvas.canvas, name="canvas"),
    path(PAGE + "add", canvas.canvas_add, name="canvas_add"),
    path(PAGE + "paste", canvas.canvas_paste, name="canvas_paste"),
    path(PAGE + "undo", canvas.canvas_undo, name="canvas_undo"),
    path(PAGE + "redo", canvas.canvas_redo, name="canvas_redo"),
    path(WIDGET, canvas.canvas_widget, name="canvas_widget"),
    path(WIDGET + "layout", canvas.canvas_layout, name="canvas_layout"),
    path(WIDGET + "property", canvas.canvas_property, name="canvas_property"),
    path(WIDGET + "property/<slug:prop>", canvas.canvas_field, name="canvas_field"),
    path(WIDGET + "rename", canvas.canvas_rename, name="canvas_rename"),
    path(WIDGET + "events", canvas.canvas_events, name="canvas_events"),
    path(WIDGET + "delete", canvas.canvas_delete, name="canvas_delete"),
    path(WIDGET + "copy", canvas.canvas_copy, name="canvas_copy"),
]
