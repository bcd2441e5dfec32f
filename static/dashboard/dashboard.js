/* Draw the dashboard's charts with ECharts from the JSON the page embeds (id "dashboard-data").
   Money arrives as strings (exact decimals); it is turned into numbers only to draw. */
(function () {
  "use strict";

  function num(v) { return v === null || v === undefined ? null : Number(v); }
  function pairs(list) { return list.map(function (d) { return { name: d.name, value: num(d.value) }; }); }
  var grid = { left: 60, right: 20, top: 40, bottom: 40, containLabel: true };

  var builders = {
    salesByDay: function (d) {
      return {
        tooltip: { trigger: "axis" }, legend: {}, grid: grid,
        xAxis: { type: "category", data: d.days }, yAxis: { type: "value" },
        series: Object.keys(d.series).map(function (name, i) {
          return { name: name, type: i === 2 ? "bar" : "line", smooth: true, data: d.series[name].map(num) };
        })
      };
    },
    salesByChannel: function (d) {
      return { tooltip: { trigger: "item" }, legend: { bottom: 0 },
        series: [{ type: "pie", radius: ["35%", "65%"], data: pairs(d) }] };
    },
    salesByStore: function (d) {
      return { tooltip: { trigger: "axis" }, grid: grid,
        xAxis: { type: "value" }, yAxis: { type: "category", inverse: true, data: d.map(function (s) { return s.name; }) },
        series: [{ type: "bar", data: d.map(function (s) { return num(s.value); }) }] };
    },
    fulfilment: function (d) {
      return { tooltip: { trigger: "item" }, legend: { bottom: 0 },
        series: [{ type: "pie", radius: "60%", data: pairs(d) }] };
    },
    couponFunnel: function (d) {
      return { tooltip: { trigger: "item" },
        series: [{ type: "funnel", sort: "descending", left: "10%", width: "80%", label: { formatter: "{b}: {c}" },
                   data: pairs(d) }] };
    },
    stockCover: function (d) {
      return { tooltip: { trigger: "axis" }, legend: {}, grid: grid,
        xAxis: { type: "category", data: d.labels, axisLabel: { interval: 0, rotate: 30 } },
        yAxis: [{ type: "value" }, { type: "value" }],
        series: [
          { name: d.valueLabel || "¥", type: "bar", data: d.value.map(num) },
          { name: d.turnoverLabel || "×", type: "line", yAxisIndex: 1, data: d.turnover.map(num) }
        ] };
    },
    tiers: function (d) {
      return { tooltip: { trigger: "item" }, legend: { bottom: 0 },
        series: [{ type: "pie", radius: "60%", data: pairs(d) }] };
    }
  };

  function draw() {
    var source = document.getElementById("dashboard-data");
    if (!source || !window.echarts) { return; }
    var data = JSON.parse(source.textContent);
    var charts = [];
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var key = el.getAttribute("data-chart");
      if (!builders[key] || data[key] === undefined) { return; }
      var chart = window.echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(builders[key](data[key]));
      el.setAttribute("data-drawn", "1");
      charts.push(chart);
    });
    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
}());
