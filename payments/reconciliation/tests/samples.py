"""Small, realistic provider statements, built from the providers' published column descriptions.

WeChat Pay's trade bill (bill type ALL): every field prefixed with a backtick, a summary section
at the end.  Alipay's business detail: ``#`` lines above and below the table, cells padded with
tabs.  Both are commonly downloaded GBK-encoded; ``encode`` does that.
"""

from __future__ import annotations

from decimal import Decimal

WECHAT_HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
                 "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,"
                 "商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")
WECHAT_SUMMARY = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"


def _fee(amount: Decimal) -> str:
    return str((amount * Decimal("0.006")).quantize(Decimal("0.00001")))


def wechat_payment(time: str, txn: str, out_trade_no: str, amount: str, state: str = "SUCCESS") -> list[str]:
    return [time, "wx2421b1c4370ec43b", "1900000109", "0", "", txn, out_trade_no, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
            "NATIVE", state, "OTHERS", "CNY", amount, "0.00", "0", "0", "0.00", "0.00", "", "", "春季衬衫", "",
            _fee(Decimal(amount)), "0.60%", amount, "0.00", ""]


def wechat_refund(time: str, txn: str, out_trade_no: str, refund_id: str, out_refund_no: str, amount: str,
                  paid: str) -> list[str]:
    return [time, "wx2421b1c4370ec43b", "1900000109", "0", "", txn, out_trade_no, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
            "NATIVE", "REFUND", "OTHERS", "CNY", "0.00", "0.00", refund_id, out_refund_no, amount, "0.00",
            "ORIGINAL", "SUCCESS", "春季衬衫", "", "-" + _fee(Decimal(amount)), "0.60%", paid, amount, ""]


def wechat_bill(rows: list[list[str]], *, summary: tuple | None = None) -> str:
    """The bill's text; the summary is computed from the rows unless given."""
    lines = [WECHAT_HEADER] + [",".join("`" + f for f in row) for row in rows]
    if summary is None:
        settled = sum((Decimal(r[12]) for r in rows if r[9] == "SUCCESS"), Decimal("0.00"))
        refunded = sum((Decimal(r[16]) for r in rows if r[9] == "REFUND"), Decimal("0.00"))
        fees = sum((Decimal(r[22]) for r in rows), Decimal("0"))
        summary = (len(rows), settled, refunded, "0.00", fees, settled, refunded)
    lines += [WECHAT_SUMMARY, ",".join(f"`{v}" for v in summary)]
    return "\r\n".join(lines) + "\r\n"


ALIPAY_HEADER = ("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,"
                 "订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,"
                 "券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注")


def alipay_trade(trade_no: str, out_trade_no: str, time: str, amount: str) -> list[str]:
    return [trade_no, out_trade_no, "交易", "春季衬衫", time, time, "", "", "", "", "abc***@163.com", amount, amount,
            "0.00", "0.00", "0.00", "0.00", "0.00", "", "0.00", "0.00", "", "-0.53", "0.00", ""]


def alipay_refund(trade_no: str, out_trade_no: str, time: str, amount: str, out_request_no: str,
                  paid: str) -> list[str]:
    return [trade_no, out_trade_no, "退款", "春季衬衫", time, time, "", "", "", "", "abc***@163.com", paid,
            "-" + amount, "0.00", "0.00", "0.00", "0.00", "0.00", "", "0.00", "0.00", out_request_no, "0.30", "0.00",
            ""]


def alipay_detail(rows: list[list[str]], *, start: str, end: str, totals: tuple[int, int] | None = None) -> str:
    trades = sum(r[2] == "交易" for r in rows)
    refunds = sum(r[2] == "退款" for r in rows)
    totals = totals or (trades, refunds)
    lines = ["#支付宝业务明细查询", "#账号：[20881234567890120156]",
             f"#起始日期：[{start}]   终止日期：[{end}]",
             "#-----------------------------------------业务明细列表----------------------------------------",
             ALIPAY_HEADER]
    lines += [",".join(f"{cell}\t" for cell in row) for row in rows]
    lines += ["#-----------------------------------------业务明细列表结束------------------------------------",
              f"#交易合计：{totals[0]}笔，退款合计：{totals[1]}笔", "#导出时间：[2026年11月24日 09:12:33]"]
    return "\r\n".join(lines) + "\r\n"


def generic(rows: list[tuple]) -> str:
    lines = ["provider_ref,our_ref,type,amount,time"] + [",".join(str(c) for c in row) for row in rows]
    return "\n".join(lines) + "\n"


def encode(text: str, encoding: str = "gbk") -> bytes:
    return text.encode(encoding)
